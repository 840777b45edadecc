using MedSearch.Engine;
using Xunit;
using Point = MedSearch.Engine.OperatingPoints.Point;

namespace MedSearch.Engine.Tests;

public sealed class OperatingPointsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("medsearch-op-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string FilePath => Path.Combine(_dir, OperatingPoints.FileName);

    private static readonly Point Full = new(0.35, "sensitivity 0.95", K: 10, Weighting: "softmax",
        ExpectedSensitivity: 0.952, ExpectedSpecificity: 0.71, ChosenOn: "split=val");

    [Fact]
    public void Absent_file_loads_as_none_and_labels_fall_back_to_the_default()
    {
        var points = OperatingPoints.Load(_dir);
        Assert.Empty(points.Labels);
        Assert.Equal(new Point(0.5, "default"), points.For("mass"));
    }

    [Fact]
    public void Save_then_load_round_trips_every_field()
    {
        var saved = OperatingPoints.Save(_dir, new Dictionary<string, Point>
        {
            ["mass"] = Full,
            ["calcification"] = new Point(0.8, "specificity 0.9"),
        });
        var loaded = OperatingPoints.Load(_dir);

        Assert.Equal(2, loaded.Labels.Count);
        Assert.Equal(Full, loaded.For("mass"));
        var plain = loaded.For("calcification");
        Assert.Equal(new Point(0.8, "specificity 0.9"), plain);
        Assert.Null(plain.K);
        Assert.Null(plain.ExpectedSensitivity);
        Assert.Equal(saved.Labels.OrderBy(p => p.Key), loaded.Labels.OrderBy(p => p.Key));
    }

    [Fact]
    public void File_is_snake_case_json_without_null_fields()
    {
        OperatingPoints.Save(_dir, new Dictionary<string, Point> { ["mass"] = Full, ["cyst"] = new Point(0.25, "manual") });
        var text = File.ReadAllText(FilePath);
        Assert.Contains("\"expected_sensitivity\"", text);
        Assert.Contains("\"chosen_on\"", text);
        // The plain point's absent fields are left out rather than written as null.
        Assert.DoesNotContain("null", text);
    }

    [Fact]
    public void Hand_written_file_loads()
    {
        File.WriteAllText(FilePath, """
            {
              "labels": {
                "mass": { "threshold": 0.4, "name": "sensitivity 0.9", "k": 5, "weighting": "uniform",
                          "expected_sensitivity": 0.91, "expected_specificity": 0.6, "chosen_on": "leave-one-out" },
                "cyst": { "threshold": 1, "name": "manual" }
              }
            }
            """);
        var points = OperatingPoints.Load(_dir);
        Assert.Equal(new Point(0.4, "sensitivity 0.9", 5, "uniform", 0.91, 0.6, "leave-one-out"), points.For("mass"));
        Assert.Equal(new Point(1.0, "manual"), points.For("cyst"));
    }

    [Fact]
    public void Second_save_keeps_other_labels_and_replaces_resaved_ones()
    {
        OperatingPoints.Save(_dir, new Dictionary<string, Point>
        {
            ["mass"] = Full,
            ["cyst"] = new Point(0.2, "old"),
        });
        var returned = OperatingPoints.Save(_dir, new Dictionary<string, Point>
        {
            ["cyst"] = new Point(0.6, "new", K: 20),
            ["nodule"] = new Point(0.45, "specificity 0.8"),
        });
        var loaded = OperatingPoints.Load(_dir);

        Assert.Equal(["cyst", "mass", "nodule"], loaded.Labels.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(Full, loaded.For("mass"));
        Assert.Equal(new Point(0.6, "new", K: 20), loaded.For("cyst"));
        Assert.Equal(new Point(0.45, "specificity 0.8"), loaded.For("nodule"));
        Assert.Equal(loaded.Labels.OrderBy(p => p.Key), returned.Labels.OrderBy(p => p.Key));
    }

    [Theory]
    [InlineData(1.5, "ok")]
    [InlineData(-0.01, "ok")]
    [InlineData(double.NaN, "ok")]
    [InlineData(double.PositiveInfinity, "ok")]
    [InlineData(0.5, "")]
    [InlineData(0.5, "   ")]
    public void Invalid_point_throws_and_leaves_the_file_untouched(double threshold, string name)
    {
        OperatingPoints.Save(_dir, new Dictionary<string, Point> { ["mass"] = Full });
        var before = File.ReadAllBytes(FilePath);

        var e = Assert.Throws<ArgumentException>(() => OperatingPoints.Save(_dir, new Dictionary<string, Point>
        {
            ["cyst"] = new Point(0.3, "fine"),
            ["nodule"] = new Point(threshold, name),
        }));
        Assert.Contains("nodule", e.Message);
        Assert.Equal(before, File.ReadAllBytes(FilePath));
        Assert.Equal([OperatingPoints.FileName], Directory.GetFiles(_dir).Select(Path.GetFileName));
    }

    [Fact]
    public void Invalid_point_does_not_create_a_file()
    {
        Assert.Throws<ArgumentException>(() => OperatingPoints.Save(_dir, new Dictionary<string, Point> { ["mass"] = new(1.5, "x") }));
        Assert.Empty(Directory.GetFileSystemEntries(_dir));
    }

    [Theory]
    [InlineData("1.5")]
    [InlineData("-0.2")]
    public void Load_rejects_a_threshold_outside_zero_to_one_naming_the_label(string threshold)
    {
        File.WriteAllText(FilePath, $$"""{ "labels": { "mass": { "threshold": 0.3, "name": "a" }, "pneumothorax": { "threshold": {{threshold}}, "name": "b" } } }""");
        var e = Assert.Throws<CollectionException>(() => OperatingPoints.Load(_dir));
        Assert.Contains("pneumothorax", e.Message);
    }

    [Fact]
    public void Load_rejects_a_missing_name_and_malformed_json()
    {
        File.WriteAllText(FilePath, """{ "labels": { "mass": { "threshold": 0.3 } } }""");
        Assert.Contains("mass", Assert.Throws<CollectionException>(() => OperatingPoints.Load(_dir)).Message);

        File.WriteAllText(FilePath, """{ "labels": """);
        Assert.Throws<CollectionException>(() => OperatingPoints.Load(_dir));

        File.WriteAllText(FilePath, """{ "other": {} }""");
        Assert.Throws<CollectionException>(() => OperatingPoints.Load(_dir));
    }

    [Fact]
    public void Save_leaves_no_temporary_files()
    {
        for (int i = 0; i < 3; i++)
            OperatingPoints.Save(_dir, new Dictionary<string, Point> { [$"label{i}"] = new(0.1 * i, $"p{i}") });
        Assert.Equal([OperatingPoints.FileName], Directory.GetFileSystemEntries(_dir).Select(Path.GetFileName));
        Assert.Equal(3, OperatingPoints.Load(_dir).Labels.Count);
    }
}
