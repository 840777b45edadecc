using MedSearch.EndToEnd.Tests;
using MedSearch.Engine;
using MedSearch.Tests.Support;
using Xunit;

namespace MedSearch.Cluster.Tests;

/// <summary>
/// What every cluster test stores: 96 labelled BreastMNIST PNGs and 10 AdrenalMNIST3D volumes written as 8-slice DICOM
/// series (one study each), and the single node that holds the same files: the answers a cluster must give.
/// </summary>
public sealed class ClusterData : IAsyncLifetime
{
    public const string Adrenal = "medmnist/adrenalmnist3d_64.npz";
    public const int Pngs = 96;
    public const int Volumes = 10;
    public const int SlicesPerVolume = 8;

    public string Root { get; } = Directory.CreateTempSubdirectory("medsearch-cluster-").FullName;
    public List<IngestItem> Items { get; } = [];
    public LocalCaseSpace Reference { get; private set; } = null!;
    public bool Available { get; private set; }

    public async Task InitializeAsync()
    {
        if (SharedData.SkipReason(MedMnistFolder.BreastMnist) is not null || SharedData.SkipReason(Adrenal) is not null) return;
        var breast = Path.Combine(Root, "breast");
        var labels = File.ReadAllLines(MedMnistFolder.WriteBreastMnist(breast, Pngs)).Skip(1).Select(line => line.Split(',')).ToList();
        foreach (var row in labels)
            Items.Add(new IngestItem("breast/" + row[0], File.ReadAllBytes(Path.Combine(breast, row[0])),
                new CaseAnnotation([row[1]], new Dictionary<string, string> { ["split"] = row[2] })));
        var adrenal = Path.Combine(Root, "adrenal");
        await DebianPython.RunAsync(Path.Combine(SharedData.RepositoryRoot, "tests", "python", "volumes_to_dicom.py"), SharedData.Require(Adrenal), adrenal,
            "--splits", "test", "--limit", Volumes.ToString(), "--slices", SlicesPerVolume.ToString());
        foreach (var file in Directory.GetFiles(adrenal, "*.dcm", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
            Items.Add(new IngestItem("adrenal/" + Path.GetRelativePath(adrenal, file), File.ReadAllBytes(file), null));
        // Interleaved, so that every ingest group mixes shards and a study's slices arrive in different groups.
        new Random(11).Shuffle(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(Items));

        Reference = new LocalCaseSpace(Collection.Open(Path.Combine(Root, "single"), new CollectionOptions()));
        foreach (var group in Items.Chunk(16))
            Assert.All(await Reference.IngestAsync(group, CancellationToken.None), r => Assert.Equal(ItemOutcome.Indexed, r.Outcome));
        Available = true;
    }

    /// <summary>Stored cases to query with: PNGs and DICOM slices alike.</summary>
    public IEnumerable<string> QueryKeys(int count) =>
        Reference.Collection.Cases().Select(c => c.Key).Order(StringComparer.Ordinal).Where((_, i) => i % 7 == 0).Take(count);

    public Task DisposeAsync()
    {
        Reference?.Dispose();
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { }
        return Task.CompletedTask;
    }
}
