using System.Numerics.Tensors;
using MedSearch.Engine;
using MedSearch.Evaluation;
using Xunit;

namespace MedSearch.EndToEnd.Tests;

/// <summary>
/// Leave-one-out evaluation of a multi-label collection with patients, studies, unlabelled cases and missing
/// demographics, checked against a brute-force reference written here: every score, count and AUC.
/// </summary>
public sealed class EvaluatorOracleTests(SyntheticCollectionFixture fixture) : IClassFixture<SyntheticCollectionFixture>
{
    private const int K = 10;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Leave_one_out_scores_counts_and_aucs_match_a_brute_force_reference(bool excludeSamePatient)
    {
        EvaluationResult result;
        using (var collection = Collection.Open(fixture.Data, new CollectionOptions()))
            result = Evaluator.Run(collection, new EvaluationOptions
            {
                Queries = new QuerySet.LeaveOneOut(),
                Ks = [K],
                ExcludeSamePatient = excludeSamePatient,
                BootstrapSamples = 200,
            });

        var records = fixture.Records;
        var labelled = records.Where(r => r.Labels.Count > 0).ToList();
        var report = result.Report;
        Assert.Equal(records.Count, report.Dataset.ReferenceCases);
        Assert.Equal(labelled.Count, report.Dataset.Queries);
        Assert.Equal(records.Count - labelled.Count, report.Dataset.UnlabelledQueries);
        Assert.Contains("its own study (where it has one)", report.Settings.Exclusions);

        var expected = new Dictionary<(string Query, string Label), double>();
        foreach (var query in labelled)
        {
            var neighbours = records
                .Where(r => r.Id != query.Id && r.Metadata["study_instance_uid"] != query.Metadata["study_instance_uid"]
                    && (!excludeSamePatient || r.Metadata["patient_hash"] != query.Metadata["patient_hash"]))
                .Select(r => (Record: r, Similarity: TensorPrimitives.Dot(query.Embedding.ToArray(), r.Embedding.ToArray())))
                .OrderByDescending(n => n.Similarity).Take(K)
                .Where(n => n.Record.Labels.Count > 0).ToList();
            double total = neighbours.Sum(n => Math.Max(n.Similarity, 0));
            foreach (var label in SyntheticCollectionFixture.Labels)
                expected[(query.Key, label)] = neighbours.Where(n => n.Record.Labels.Contains(label)).Sum(n => Math.Max(n.Similarity, 0)) / total;
        }

        var scores = result.Scores.Where(s => s.K == K).ToList();
        Assert.Equal(labelled.Count * SyntheticCollectionFixture.Labels.Length, scores.Count);
        foreach (var score in scores)
        {
            Assert.True(Math.Abs(expected[(score.Query, score.Label)] - score.ExactScore) < 1e-5,
                $"{score.Query} {score.Label}: {score.ExactScore}, reference {expected[(score.Query, score.Label)]}");
            Assert.Equal(labelled.Single(r => r.Key == score.Query).Labels.Contains(score.Label), score.Truth);
        }

        var byK = Assert.Single(report.ByK);
        foreach (var label in SyntheticCollectionFixture.Labels)
        {
            var report1 = Assert.Single(byK.Labels, l => l.Label == label);
            var positives = labelled.Where(r => r.Labels.Contains(label)).ToList();
            Assert.Equal(positives.Count, report1.Overall.Positives);
            Assert.Equal(labelled.Count - positives.Count, report1.Overall.Negatives);
            var truth = labelled.Select(r => (Score: expected[(r.Key, label)], Positive: r.Labels.Contains(label))).ToList();
            // Float similarity noise may flip a near-tied pair: one pair moves the AUC by ~4e-6.
            Assert.True(Math.Abs(MannWhitney(truth) - report1.ExactAuc!.Value) < 1e-4, $"{label}: AUC {report1.ExactAuc} vs reference {MannWhitney(truth)}");
            Assert.True(Math.Abs(report1.Overall.Auc!.Value - report1.ExactAuc.Value) <= 0.005);

            // Sex groups: F, M, then the cases without a recorded sex.
            var sexes = report1.Subgroups.Where(g => g.Group.StartsWith("sex ", StringComparison.Ordinal)).ToList();
            Assert.Equal(["sex F", "sex M", "sex unknown"], sexes.Select(g => g.Group));
            Assert.Equal(labelled.Count(r => !r.Metadata.ContainsKey("sex") && r.Labels.Contains(label)), sexes[2].Positives);
            Assert.Equal(labelled.Count(r => r.Metadata.GetValueOrDefault("sex") == "F" && !r.Labels.Contains(label)), sexes[0].Negatives);
            // The gap by sex compares only known groups.
            var gap = report1.LargestGaps.Single(g => g.Dimension == "sex" && g.Metric == "AUC");
            Assert.Equal(Math.Abs(sexes[0].Auc!.Value - sexes[1].Auc!.Value), gap.Difference, 12);
        }
    }

    private static double MannWhitney(IReadOnlyList<(double Score, bool Positive)> cases)
    {
        double wins = 0;
        long pairs = 0;
        foreach (var p in cases.Where(c => c.Positive))
        foreach (var n in cases.Where(c => !c.Positive))
        {
            pairs++;
            wins += p.Score > n.Score ? 1 : p.Score == n.Score ? 0.5 : 0;
        }
        return wins / pairs;
    }
}
