using MedSearch.Cluster;
using MedSearch.Engine;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace MedSearch.Server;

/// <summary>
/// A server in a cluster: an Orleans silo in the same host, owning its share of the shards, and the gateway that
/// answers the gRPC API from all of them.
/// </summary>
internal static class ClusterSilo
{
    /// <summary>The cluster storage, created with --shards (and the pooling options) or checked against them.</summary>
    public static ClusterLayout Layout(ClusterOptions cluster, CollectionOptions collection) =>
        ClusterLayout.CreateOrOpen(cluster.StoragePath, cluster.Shards,
            collection.Pooling is null && collection.SlicesPerSeries is null ? null
            : new VolumeOptions { Pooling = collection.Pooling ?? Pooling.Mean, SlicesPerSeries = collection.SlicesPerSeries ?? VolumeOptions.DefaultSlices });

    public static void Join(WebApplicationBuilder builder, ClusterOptions cluster, ClusterLayout layout, CollectionOptions collection)
    {
        builder.UseOrleans(silo => silo.UseMedSearchLocalhostClustering(cluster).AddMedSearchShards(layout, collection));
        // Queries are embedded with this silo's encoder, the one its shards embed ingested files with.
        builder.Services.AddSingleton<ICaseSpace>(services => ClusterHosting.CaseSpace(services.GetRequiredService<IGrainFactory>(), layout,
            services.GetRequiredService<ShardHost>().Encoder, collection, cluster.Timeouts));
    }
}
