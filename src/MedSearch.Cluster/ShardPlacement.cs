using Orleans.Placement;
using Orleans.Runtime;
using Orleans.Runtime.Placement;

namespace MedSearch.Cluster;

/// <summary>
/// Places shard n on the (n mod silos)-th active silo in address order, so shards spread evenly over the silos
/// that exist when they activate (Orleans' default random placement can stack several on one silo). After a silo
/// leaves, its shards activate on the survivors the same way; Orleans' grain directory keeps one activation
/// per shard at a time.
/// </summary>
[GenerateSerializer, Alias("medsearch.v1.shard-placement")]
public sealed class ShardPlacementStrategy : PlacementStrategy;

[AttributeUsage(AttributeTargets.Class, AllowMultiple = false)]
public sealed class ShardPlacementAttribute() : PlacementAttribute(new ShardPlacementStrategy());

internal sealed class ShardPlacementDirector : IPlacementDirector
{
    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        var silos = context.GetCompatibleSilos(target).OrderBy(s => s.ToString(), StringComparer.Ordinal).ToArray();
        long shard = target.GrainIdentity.GetIntegerKey();
        return Task.FromResult(silos[(int)(shard % silos.Length)]);
    }
}
