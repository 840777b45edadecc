using MedSearch.Embedding;
using MedSearch.Engine;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Configuration;
using Orleans.TestingHost;

namespace MedSearch.Cluster.Tests;

/// <summary>Orleans silos in this process (TestingHost) owning the shards of one cluster storage, and a gateway's case space over them.</summary>
public sealed class TestShardCluster : IAsyncDisposable
{
    private TestShardCluster(InProcessTestCluster cluster, ClusterLayout layout, ClusterCaseSpace space)
    {
        Silos = cluster;
        Layout = layout;
        Space = space;
    }

    public InProcessTestCluster Silos { get; }
    public ClusterLayout Layout { get; }
    public ClusterCaseSpace Space { get; }

    public static async Task<TestShardCluster> StartAsync(string storage, int silos, int shards, ImageEncoder queryEncoder, ShardTimeouts? timeouts = null)
    {
        var layout = ClusterLayout.CreateOrOpen(storage, shards, volumes: null);
        var builder = new InProcessTestClusterBuilder((short)silos);
        builder.ConfigureSilo((_, silo) =>
        {
            silo.AddMedSearchShards(layout, new CollectionOptions());
            silo.Configure<ClusterMembershipOptions>(ClusterHosting.FastFailureDetection);
        });
        builder.ConfigureClient(client => client.Services.AddMedSearchSerialization());
        var cluster = builder.Build();
        await cluster.DeployAsync();
        var space = ClusterHosting.CaseSpace(cluster.Client, layout, queryEncoder, new CollectionOptions(), timeouts ?? new ShardTimeouts());
        return new TestShardCluster(cluster, layout, space);
    }

    /// <summary>The shards each live silo owns now.</summary>
    public IReadOnlyDictionary<string, IReadOnlyCollection<int>> Owners() =>
        Silos.Silos.Where(s => s.IsActive).ToDictionary(s => s.SiloAddress.ToString(), s => s.ServiceProvider.GetRequiredService<ShardHost>().OpenShards);

    public async ValueTask DisposeAsync() => await Silos.DisposeAsync();
}
