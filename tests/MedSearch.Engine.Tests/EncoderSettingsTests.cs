using MedSearch.Embedding;
using MedSearch.Engine;
using MedSearch.Tests.Support;
using Xunit;

namespace MedSearch.Engine.Tests;

/// <summary>No other test class runs beside these: they set the process's $MEDSEARCH_DEVICE and $MEDSEARCH_MODEL.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class EncoderEnvironmentCollection
{
    public const string Name = "encoder environment variables";
}

/// <summary>
/// $MEDSEARCH_DEVICE and $MEDSEARCH_MODEL, the configuration form of --device and --model, as
/// <see cref="CollectionOptions.FromSettings"/> reads them through <see cref="Setting.From"/>: the option, when given,
/// wins over the variable, which wins over the defaults (the built-in model, auto).
/// </summary>
[Collection(EncoderEnvironmentCollection.Name)]
public sealed class EncoderSettingsTests : IDisposable
{
    private const string DeviceVariable = CollectionOptions.DeviceEnvironmentVariable;
    private const string ModelVariable = CollectionOptions.ModelEnvironmentVariable;

    private readonly string _dir = Directory.CreateTempSubdirectory("medsearch-encoder-settings-").FullName;
    private readonly string? _device = Environment.GetEnvironmentVariable(DeviceVariable);
    private readonly string? _model = Environment.GetEnvironmentVariable(ModelVariable);

    public void Dispose()
    {
        Environment.SetEnvironmentVariable(DeviceVariable, _device);
        Environment.SetEnvironmentVariable(ModelVariable, _model);
        Directory.Delete(_dir, recursive: true);
    }

    private static void Set(string? device, string? model)
    {
        Environment.SetEnvironmentVariable(DeviceVariable, device);
        Environment.SetEnvironmentVariable(ModelVariable, model);
    }

    [Fact]
    public void DeviceCpuAndAModelFromTheEnvironmentOpenThatModelOnTheCpu()
    {
        var folder = Path.Combine(_dir, "tiny");
        TinyConvModel.Write(folder);
        Set("cpu", folder);

        var options = CollectionOptions.FromSettings(model: null, device: null);
        Assert.Equal(EncoderDevice.Cpu, options.Encoder.Device);
        Assert.Equal(folder, options.ModelPath);

        using var encoder = options.OpenEncoder(Path.Combine(_dir, "data"));
        Assert.Equal(EncoderDevice.Cpu, encoder.Device);
        Assert.Equal("CPUExecutionProvider", encoder.ExecutionProvider);
        Assert.Null(encoder.FallbackReason); // cpu was asked for: no CUDA attempt, nothing to fall back from
        Assert.StartsWith("tiny-conv-", encoder.Manifest.ModelId);
    }

    [Fact]
    public void ABadDeviceInTheEnvironmentIsRefusedNamingTheVariableAndTheAllowedValues()
    {
        Set("gpu0", null);
        var error = Assert.Throws<FormatException>(() => CollectionOptions.FromSettings(model: null, device: null));
        Assert.Contains("$MEDSEARCH_DEVICE", error.Message);
        Assert.Contains("auto, cpu, cuda or cuda:N", error.Message);
        Assert.Contains("`gpu0`", error.Message);
    }

    [Fact]
    public void OptionsWinOverTheEnvironment()
    {
        Set("gpu0", Path.Combine(_dir, "from-environment"));
        // A bad variable does not matter when the option is given: it is not read.
        var options = CollectionOptions.FromSettings(model: Path.Combine(_dir, "from-option"), device: "cuda:1");
        Assert.Equal(EncoderDevice.Cuda, options.Encoder.Device);
        Assert.Equal(1, options.Encoder.DeviceId);
        Assert.Equal(Path.Combine(_dir, "from-option"), options.ModelPath);

        Set("cpu", null);
        Assert.Equal(EncoderDevice.Auto, CollectionOptions.FromSettings(null, device: "auto").Encoder.Device);
        // A bad option is named as the option's value, not the variable's.
        var error = Assert.Throws<FormatException>(() => CollectionOptions.FromSettings(null, device: "gpu1"));
        Assert.DoesNotContain("MEDSEARCH_DEVICE", error.Message);
        Assert.Contains("`gpu1`", error.Message);
    }

    [Fact]
    public void UnsetOrBlankVariablesLeaveTheDefaults()
    {
        Set(null, null);
        var unset = CollectionOptions.FromSettings(null, null);
        Assert.Equal(EncoderDevice.Auto, unset.Encoder.Device);
        Assert.Null(unset.ModelPath);

        Set("  ", " ");
        var blank = CollectionOptions.FromSettings(null, null, new EncoderOptions { Device = EncoderDevice.Cpu });
        Assert.Equal(EncoderDevice.Cpu, blank.Encoder.Device); // the caller's encoder options stand
        Assert.Null(blank.ModelPath);
        Assert.Equal("the built-in ResNet18", blank.ModelDescription);
    }
}
