using MedSearch.Engine;
using Xunit;

namespace MedSearch.Engine.Tests;

public class CaseIdTests
{
    [Fact]
    public void Ids_are_stable_positive_and_round_trip_as_text()
    {
        var id = CaseId.FromKey(CaseId.FileKey("train/0001.png"));
        Assert.Equal(id, CaseId.FromKey("file:train/0001.png"));
        Assert.True(id is > 0 and <= long.MaxValue);
        Assert.NotEqual(id, CaseId.FromKey(CaseId.FileKey("train/0002.png")));
        var text = CaseId.Format(id);
        Assert.Equal(16, text.Length);
        Assert.True(CaseId.TryParse(text, out var parsed));
        Assert.Equal(id, parsed);
        Assert.False(CaseId.TryParse("file:train/0001.png", out _));
    }

    [Fact]
    public void File_keys_use_forward_slashes_whatever_the_platform()
    {
        Assert.Equal("file:a/b.png", CaseId.FileKey(@"a\b.png"));
    }
}
