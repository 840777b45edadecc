using System.Text.Json;
using MedSearch.Engine;
using MedSearch.Tests.Support;
using Xunit;

namespace MedSearch.EndToEnd.Tests;

/// <summary>
/// AdrenalMNIST3D volumes written as DICOM series (tests/python/volumes_to_dicom.py, labels per study) and
/// evaluated as series and studies: the study labels reach the series, the split reaches its queries, and the
/// vote at series level is the neighbour-weighted share of labelled series, checked by hand.
/// </summary>
public sealed class SeriesEvaluationTests
{
    private const string Adrenal = "medmnist/adrenalmnist3d_64.npz";

    [SharedDataFact(Adrenal)]
    public async Task Series_and_studies_are_evaluated_and_classified_with_their_study_labels()
    {
        var root = Directory.CreateTempSubdirectory("medsearch-series-eval-").FullName;
        try
        {
            var images = Path.Combine(root, "images");
            var data = Path.Combine(root, "data");
            await DebianPython.RunAsync(Path.Combine(SharedData.RepositoryRoot, "tests", "python", "volumes_to_dicom.py"),
                SharedData.Require(Adrenal), images, "--splits", "train,test", "--limit", "10", "--slices", "8", "--shuffle-names", "5");
            var index = await MedSearchProcess.RunAsync(TimeSpan.FromMinutes(5), "index", images, "--labels", Path.Combine(images, "labels.csv"),
                "--data", data, "--series-slices", "4");
            Assert.True(index.ExitCode == 0, index.ToString());
            Assert.Contains("indexed:   160", index.Output);

            var output = Path.Combine(root, "report");
            var eval = await MedSearchProcess.RunAsync(TimeSpan.FromMinutes(5), "eval", "--data", data, "--level", "series", "--split", "split=test",
                "--k", "3", "--out", output);
            Assert.True(eval.ExitCode == 0, eval.ToString());
            var report = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, "report.json"))).RootElement;
            Assert.Equal(10, report.GetProperty("dataset").GetProperty("queries").GetInt32());
            Assert.Equal(10, report.GetProperty("dataset").GetProperty("reference_cases").GetInt64());
            Assert.StartsWith("series (pooled: mean of up to 4 slices)", report.GetProperty("settings").GetProperty("query_source").GetString());

            using var collection = Collection.Open(data, new CollectionOptions());
            Assert.Equal(4, collection.Volumes.SlicesPerSeries);
            var series = collection.Cases(VolumeLevel.Series).ToList();
            Assert.Equal(20, series.Count);
            Assert.All(series, s => Assert.Equal("8", s.Metadata["slices"]));
            Assert.All(series, s => Assert.Single(s.Labels));
            var test = series.Where(s => s.Metadata["split"] == "test").OrderBy(s => s.Key, StringComparer.Ordinal).First();
            var query = collection.VolumeQuery(VolumeLevel.Series, test.Metadata["series_instance_uid"]);
            Assert.Equal(4, query.Slices!.Count);
            var testIds = series.Where(s => s.Metadata["split"] == "test").Select(s => s.Id).ToHashSet();
            var result = collection.Classify(query, new SearchOptions { K = 3, ExcludedCases = testIds }, Weighting.Similarity, 0.1);
            Assert.All(result.Neighbours, n => Assert.Equal("train", n.Case.Metadata["split"]));
            Assert.All(result.Neighbours, n => Assert.NotNull(n.BestSlices));
            foreach (var decision in result.Labels)
            {
                double expected = result.Neighbours.Where(n => n.Case.Labels.Contains(decision.Label)).Sum(n => (double)n.Similarity)
                    / result.Neighbours.Sum(n => (double)n.Similarity);
                Assert.Equal(expected, decision.Score, 6);
            }
            // The eval's own score for this query agrees with Classify's.
            var scores = File.ReadLines(Path.Combine(output, "scores.csv")).Skip(1).Select(l => l.Split(',')).Where(f => f[0] == test.Key).ToList();
            Assert.NotEmpty(scores);
            foreach (var f in scores)
                Assert.Equal(result.Labels.SingleOrDefault(d => d.Label == f[2])?.Score ?? 0, double.Parse(f[4], System.Globalization.CultureInfo.InvariantCulture), 6);

            var studies = collection.Cases(VolumeLevel.Study).ToList();
            Assert.Equal(20, studies.Count);
            Assert.All(studies, s => Assert.Equal("1", s.Metadata["series"]));
        }
        finally
        {
            try { Directory.Delete(root, recursive: true); } catch (IOException) { }
        }
    }
}
