using MedSearch.Engine;
using MedSearch.Storage.Records;
using Xunit;

namespace MedSearch.Engine.Tests;

public class NeighbourVoteTests
{
    private static Neighbour With(int rank, params string[] labels)
    {
        var record = new CaseRecord { Id = (ulong)rank, Key = $"file:{rank}.png" };
        record.Labels.Add(labels);
        return new Neighbour(rank, 1f - rank * 0.01f, record);
    }

    [Fact]
    public void Scores_are_vote_shares_over_labelled_neighbours()
    {
        var (votes, unlabelled) = NeighbourVote.Tally([With(1, "a"), With(2, "a"), With(3, "b"), With(4)]);
        Assert.Equal(1, unlabelled);
        Assert.Equal(2, votes.Count);
        Assert.Equal(("a", 2.0 / 3, 2), (votes[0].Label, votes[0].Score, votes[0].Neighbours));
        Assert.Equal(("b", 1.0 / 3, 1), (votes[1].Label, votes[1].Score, votes[1].Neighbours));
    }

    [Fact]
    public void A_multi_label_neighbour_splits_its_vote_and_scores_still_sum_to_one()
    {
        var (votes, _) = NeighbourVote.Tally([With(1, "a", "b"), With(2, "b")]);
        Assert.Equal(0.75, votes.Single(v => v.Label == "b").Score, 12);
        Assert.Equal(0.25, votes.Single(v => v.Label == "a").Score, 12);
        Assert.Equal(1.0, votes.Sum(v => v.Score), 12);
    }

    [Fact]
    public void No_labelled_neighbours_means_no_votes()
    {
        var (votes, unlabelled) = NeighbourVote.Tally([With(1), With(2)]);
        Assert.Empty(votes);
        Assert.Equal(2, unlabelled);
    }
}
