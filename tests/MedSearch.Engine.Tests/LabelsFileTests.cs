using MedSearch.Engine;
using Xunit;

namespace MedSearch.Engine.Tests;

public class LabelsFileTests
{
    [Fact]
    public void Reads_paths_labels_and_metadata_with_quoting()
    {
        var file = LabelsFile.Parse("""
            path,labels,split,note
            a/1.png,malignant,train,"said ""maybe"", then yes"
            ./a/2.png,benign;calcification,test,
            b\3.png,,val,"two
            lines"
            """, "labels.csv");

        Assert.Equal(3, file.Count);
        var one = file.Find(CaseId.FileKey("a/1.png"))!;
        Assert.Equal(["malignant"], one.Labels);
        Assert.Equal("train", one.Metadata["split"]);
        Assert.Equal("said \"maybe\", then yes", one.Metadata["note"]);
        var two = file.Find(CaseId.FileKey("a/2.png"))!;
        Assert.Equal(["benign", "calcification"], two.Labels);
        Assert.False(two.Metadata.ContainsKey("note"));
        var three = file.Find(CaseId.FileKey("b/3.png"))!;
        Assert.Empty(three.Labels);
        Assert.Equal("two\nlines", three.Metadata["note"]);
    }

    [Fact]
    public void Sop_instance_uid_column_keys_by_uid()
    {
        var file = LabelsFile.Parse("sop_instance_uid,labels\n1.2.3.4,pneumonia\n", "l.csv");
        Assert.Equal(["pneumonia"], file.Find(CaseId.SopKey("1.2.3.4"))!.Labels);
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("name,labels\nx,y\n", "neither a `path` nor a `sop_instance_uid`")]
    [InlineData("path,label\nx,y\n", "no `labels` column")]
    [InlineData("path,labels\na.png,x,extra\n", "l.csv:2: 3 fields, the header has 2")]
    [InlineData("path,labels\na.png,x\na.png,y\n", "l.csv:3: a second row")]
    [InlineData("path,labels\n../a.png,x\n", "must be relative")]
    [InlineData("path,labels\n\"a.png,x\n", "never closed")]
    [InlineData("path,labels,labels\na,b,c\n", "appears twice")]
    public void Bad_files_name_the_line_and_the_problem(string text, string expected)
    {
        var e = Assert.Throws<CollectionException>(() => LabelsFile.Parse(text, "l.csv"));
        Assert.Contains(expected, e.Message);
    }
}
