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

    [Fact]
    public void Study_rows_label_every_instance_of_the_study_that_has_no_row_of_its_own()
    {
        var file = LabelsFile.Parse("""
            sop_instance_uid,study_instance_uid,labels,site
            ,1.2.9,glioma,north
            1.2.3.5,,normal,
            ,"1.2.8",meningioma;edema,south
            """, "labels.csv");

        Assert.Equal(3, file.Count);
        Assert.Equal([CaseId.SopKey("1.2.3.5")], file.Keys);
        Assert.Equal(["1.2.8", "1.2.9"], file.StudyInstanceUids.Order());
        var study = file.FindStudy("1.2.9")!;
        Assert.Equal(["glioma"], study.Labels);
        Assert.Equal("north", study.Metadata["site"]);
        Assert.False(study.Metadata.ContainsKey("study_instance_uid"));
        Assert.False(study.Metadata.ContainsKey("sop_instance_uid"));
        Assert.Equal(["meningioma", "edema"], file.For(CaseId.SopKey("1.2.3.7"), "1.2.8")!.Labels);

        // An instance of the study without a row of its own inherits the study's row.
        Assert.Same(study, file.For(CaseId.SopKey("1.2.3.4"), "1.2.9"));
        // The instance's own row is more specific and wins over its study's.
        Assert.Equal(["normal"], file.For(CaseId.SopKey("1.2.3.5"), "1.2.9")!.Labels);
        Assert.Equal(["normal"], file.For(CaseId.SopKey("1.2.3.5"), null)!.Labels);
        // No study (a PNG) or another study: nothing.
        Assert.Null(file.For(CaseId.SopKey("1.2.3.4"), null));
        Assert.Null(file.For(CaseId.SopKey("1.2.3.4"), "1.2.10"));
        // Study rows are not case keys.
        Assert.Null(file.Find("1.2.9"));
        Assert.Null(file.Find(CaseId.SopKey("1.2.9")));
    }

    [Fact]
    public void An_instance_row_naming_its_study_is_keyed_by_the_instance_and_keeps_the_study_as_metadata()
    {
        var file = LabelsFile.Parse("sop_instance_uid,study_instance_uid,labels\n1.2.3,1.2.9,x\n", "l.csv");
        var row = file.Find(CaseId.SopKey("1.2.3"))!;
        Assert.Equal(["x"], row.Labels);
        Assert.Equal("1.2.9", row.Metadata["study_instance_uid"]);
        Assert.Null(file.FindStudy("1.2.9"));
    }

    [Fact]
    public void A_file_may_mix_path_and_study_rows()
    {
        var file = LabelsFile.Parse("path,study_instance_uid,labels\na/1.png,,benign\n,1.2.9,malignant\n", "l.csv");
        Assert.Equal(["benign"], file.For(CaseId.FileKey("a/1.png"), null)!.Labels);
        Assert.Equal(["malignant"], file.For(CaseId.SopKey("1.2.3"), "1.2.9")!.Labels);
        Assert.Equal(["benign"], file.For(CaseId.FileKey("a/1.png"), "1.2.9")!.Labels);
    }

    [Fact]
    public void A_file_of_study_rows_only_is_valid()
    {
        var file = LabelsFile.Parse("study_instance_uid,labels\n 1.2.9 ,glioma\n", "l.csv");
        Assert.Empty(file.Keys);
        Assert.Equal(["glioma"], file.For(CaseId.SopKey("1.2.3"), "1.2.9")!.Labels);
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("name,labels\nx,y\n", "no key column, one of `path`, `sop_instance_uid` or `study_instance_uid`")]
    [InlineData("path,sop_instance_uid,labels\na.png,,x\n,,y\n", "l.csv:3: none of `path` or `sop_instance_uid` is filled in")]
    [InlineData("sop_instance_uid,study_instance_uid,labels\n1.2.3,,x\n , ,y\n", "l.csv:3: none of `sop_instance_uid` or `study_instance_uid` is filled in")]
    [InlineData("study_instance_uid,labels\n1.2.9,x\n,y\n", "l.csv:3: `study_instance_uid` is not filled in")]
    [InlineData("path,sop_instance_uid,labels\na.png,1.2.3,x\n", "l.csv:2: `path` and `sop_instance_uid` are both filled in")]
    [InlineData("path,sop_instance_uid,study_instance_uid,labels\n,1.2.3,,x\na.png,1.2.3,1.2.9,x\n", "l.csv:3: `path` and `sop_instance_uid` are both filled in")]
    [InlineData("study_instance_uid,labels\n1.2.9,x\n\"1.2.9\",y\n", "l.csv:3: a second row for study:1.2.9")]
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
