using MedSearch.Evaluation;
using Xunit;

namespace MedSearch.Evaluation.Tests;

public class SubgroupsTests
{
    private static Dictionary<string, string> Meta(params (string Key, string Value)[] pairs) =>
        pairs.ToDictionary(p => p.Key, p => p.Value);

    [Fact]
    public void Parses_the_default_bands()
    {
        var bands = Subgroups.ParseAgeBands("0-17,18-39,40-64,65+");
        Assert.Equal([new AgeBand(0, 17), new AgeBand(18, 39), new AgeBand(40, 64), new AgeBand(65, null)], bands);
        Assert.Equal(Subgroups.DefaultAgeBands, bands);
        Assert.Equal(["age 0-17", "age 18-39", "age 40-64", "age 65+"], bands.Select(b => b.Name));
    }

    [Fact]
    public void Parses_spaces_and_a_trailing_dash_as_open_ended()
    {
        Assert.Equal([new AgeBand(0, 49), new AgeBand(50, null)], Subgroups.ParseAgeBands(" 0 - 49 , 50- "));
    }

    [Theory]
    [InlineData("a-b", "a-b")]
    [InlineData("0-17,x+", "x+")]
    [InlineData("0-17,18", "18")]
    [InlineData("0-17-30", "0-17-30")]
    [InlineData("-5-10", "-5-10")]
    public void Unparseable_band_is_named(string text, string part)
    {
        var e = Assert.Throws<ArgumentException>(() => Subgroups.ParseAgeBands(text));
        Assert.Contains($"`{part}`", e.Message);
    }

    [Fact]
    public void No_bands_is_an_error()
    {
        Assert.Throws<ArgumentException>(() => Subgroups.ParseAgeBands(" , "));
    }

    [Fact]
    public void Reversed_band_is_rejected_by_the_constructor()
    {
        var bands = Subgroups.ParseAgeBands("10-5");
        var e = Assert.Throws<ArgumentException>(() => new Subgroups(bands));
        Assert.Contains("age 10-5", e.Message);
    }

    [Fact]
    public void Overlapping_bands_are_rejected()
    {
        var e = Assert.Throws<ArgumentException>(() => new Subgroups(Subgroups.ParseAgeBands("0-20,18-40")));
        Assert.Contains("age 0-20", e.Message);
        Assert.Contains("age 18-40", e.Message);
        Assert.Contains("overlap", e.Message);
    }

    [Fact]
    public void Out_of_order_bands_are_rejected()
    {
        var e = Assert.Throws<ArgumentException>(() => new Subgroups(Subgroups.ParseAgeBands("40-64,0-17")));
        Assert.Contains("age 0-17", e.Message);
    }

    [Fact]
    public void Open_band_must_be_last()
    {
        var e = Assert.Throws<ArgumentException>(() => new Subgroups(Subgroups.ParseAgeBands("65+,0-17")));
        Assert.Contains("age 65+", e.Message);
        Assert.Contains("open-ended", e.Message);
    }

    [Theory]
    [InlineData("17", "age 0-17")]
    [InlineData("17.5", "age 0-17")]
    [InlineData("0", "age 0-17")]
    [InlineData("18", "age 18-39")]
    [InlineData("39.99", "age 18-39")]
    [InlineData("40", "age 40-64")]
    [InlineData("64.9", "age 40-64")]
    [InlineData("65", "age 65+")]
    [InlineData("120", "age 65+")]
    [InlineData(" 70 ", "age 65+")]
    [InlineData("abc", "age unknown")]
    [InlineData("", "age unknown")]
    [InlineData("-1", "age unknown")]
    [InlineData("-0.5", "age unknown")]
    public void Age_falls_in_its_band(string age, string expected)
    {
        var subgroups = new Subgroups(Subgroups.DefaultAgeBands);
        Assert.Equal(expected, subgroups.AgeOf(Meta(("age", age))));
    }

    [Fact]
    public void Missing_age_is_unknown()
    {
        var subgroups = new Subgroups(Subgroups.DefaultAgeBands);
        Assert.Equal("age unknown", subgroups.AgeOf(Meta()));
        Assert.Equal("age unknown", subgroups.AgeOf(Meta(("sex", "F"))));
    }

    [Fact]
    public void Age_in_a_gap_between_bands_is_unknown()
    {
        var subgroups = new Subgroups(Subgroups.ParseAgeBands("0-9,20-29"));
        Assert.Equal("age 0-9", subgroups.AgeOf(Meta(("age", "9.5"))));
        Assert.Equal("age unknown", subgroups.AgeOf(Meta(("age", "15"))));
        Assert.Equal("age unknown", subgroups.AgeOf(Meta(("age", "30"))));
    }

    [Theory]
    [InlineData("M", "sex M")]
    [InlineData("F", "sex F")]
    [InlineData("O", "sex O")]
    [InlineData("male", "sex M")]
    [InlineData("Female", "sex F")]
    [InlineData(" f ", "sex F")]
    [InlineData("", "sex unknown")]
    [InlineData("X", "sex unknown")]
    public void Sex_groups(string sex, string expected)
    {
        Assert.Equal(expected, Subgroups.SexOf(Meta(("sex", sex))));
    }

    [Fact]
    public void Missing_sex_is_unknown()
    {
        Assert.Equal("sex unknown", Subgroups.SexOf(Meta()));
        Assert.Equal("sex unknown", Subgroups.SexOf(Meta(("age", "40"))));
    }
}
