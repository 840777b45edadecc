namespace MedSearch.Embedding.Tests;

/// <summary>One prepared default model (and a CPU encoder over it) for every test that needs the real network.</summary>
public sealed class PreparedModelFixture : IDisposable
{
    public PreparedModelFixture()
    {
        DataDir = Directory.CreateTempSubdirectory("medsearch-embedding-tests-").FullName;
        Manifest = DefaultModel.Prepare(DataDir);
        Encoder = ImageEncoder.Open(DefaultModel.ManifestPath(DataDir), new EncoderOptions { Device = EncoderDevice.Cpu });
    }

    public string DataDir { get; }
    public ModelManifest Manifest { get; }
    public ImageEncoder Encoder { get; }

    public void Dispose()
    {
        Encoder.Dispose();
        Directory.Delete(DataDir, recursive: true);
    }
}

[CollectionDefinition(Name)]
public sealed class PreparedModelCollection : ICollectionFixture<PreparedModelFixture>
{
    public const string Name = "prepared default model";
}
