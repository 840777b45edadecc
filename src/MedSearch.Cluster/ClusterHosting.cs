using System.Net;
using MedSearch.Engine;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Orleans.Configuration;
using Orleans.Serialization;

namespace MedSearch.Cluster;

/// <summary>Settings of `medsearch serve --cluster`: where the shards live and how this silo finds the others.</summary>
public sealed record ClusterOptions
{
    public const int DefaultSiloPort = 11111;
    public const int DefaultGatewayPort = 30000;

    /// <summary>The cluster storage (see <see cref="ClusterLayout"/>), a directory every silo reaches.</summary>
    public required string StoragePath { get; init; }

    /// <summary>Shards to create the cluster with; null to join an existing one (its count is in cluster.json).</summary>
    public int? Shards { get; init; }

    /// <summary>Silos of one cluster share this id; separate clusters on one network need different ones.</summary>
    public string ClusterId { get; init; } = "medsearch";

    /// <summary>Silo-to-silo port of this silo.</summary>
    public int SiloPort { get; init; } = DefaultSiloPort;

    /// <summary>Orleans client port of this silo (for processes that join as clients).</summary>
    public int GatewayPort { get; init; } = DefaultGatewayPort;

    /// <summary>
    /// Development clustering on one machine: the silo endpoint of the first silo, which the others join; null on the
    /// first silo itself. Production uses a membership table instead (docs/scaling.md).
    /// </summary>
    public IPEndPoint? Primary { get; init; }

    public ShardTimeouts Timeouts { get; init; } = new();
}

/// <summary>Wiring of the cluster into Orleans silos and clients.</summary>
public static class ClusterHosting
{
    /// <summary>Makes a silo able to own shards of <paramref name="layout"/>, opened with <paramref name="options"/>.</summary>
    public static ISiloBuilder AddMedSearchShards(this ISiloBuilder silo, ClusterLayout layout, CollectionOptions options)
    {
        silo.Services.AddSingleton(layout);
        silo.Services.AddSingleton(services => new ShardHost(layout, options, services.GetRequiredService<ILogger<ShardHost>>()));
        silo.Services.AddPlacementDirector<ShardPlacementStrategy, ShardPlacementDirector>();
        silo.Services.AddMedSearchSerialization();
        return silo;
    }

    /// <summary>
    /// Localhost clustering for development and single-machine benchmarks: every silo on this machine, found through
    /// the first (primary) silo. Faster failure detection than Orleans' defaults, so a killed silo's shards move
    /// within seconds.
    /// </summary>
    public static ISiloBuilder UseMedSearchLocalhostClustering(this ISiloBuilder silo, ClusterOptions options)
    {
        silo.UseLocalhostClustering(options.SiloPort, options.GatewayPort, options.Primary, serviceId: options.ClusterId, clusterId: options.ClusterId);
        silo.Configure<ClusterMembershipOptions>(FastFailureDetection);
        return silo;
    }

    /// <summary>Declares a silo dead after about 3 s of missed probes instead of Orleans' ~30 s: shards are cheap to move.</summary>
    public static void FastFailureDetection(ClusterMembershipOptions membership)
    {
        membership.ProbeTimeout = TimeSpan.FromSeconds(1);
        membership.NumMissedProbesLimit = 2;
        membership.NumVotesForDeathDeclaration = 1;
    }

    /// <summary>The codec for what crosses between gateway and shards besides the generated ones: the search filter, as JSON.</summary>
    public static IServiceCollection AddMedSearchSerialization(this IServiceCollection services) =>
        services.AddSerializer(serializer => serializer.AddJsonSerializer(isSupported: type => type == typeof(CaseFilter)));

    /// <summary>
    /// The case space a gateway on this process serves: the cluster's shards through <paramref name="grains"/>, with
    /// queries embedded by <paramref name="encoder"/> (a silo's, or one the gateway opened).
    /// </summary>
    public static ClusterCaseSpace CaseSpace(IGrainFactory grains, ClusterLayout layout, Embedding.ImageEncoder encoder, CollectionOptions options,
        ShardTimeouts timeouts)
    {
        var readOptions = new Imaging.ImageReadOptions { PatientHasher = new Dicom.PatientHasher(Dicom.PatientHasher.OpenOrCreateKey(layout.Root)) };
        return new ClusterCaseSpace(grains, layout, new QueryReader(encoder, readOptions, layout.Settings.Volumes), options, timeouts);
    }
}
