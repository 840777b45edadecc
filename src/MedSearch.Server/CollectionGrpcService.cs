using Grpc.Core;
using MedSearch.Engine;
using MedSearch.Protocol.V1;

namespace MedSearch.Server;

/// <summary>The case space as a whole: what it holds and how it is indexed.</summary>
public sealed class CollectionGrpcService(ICaseSpace space) : CollectionService.CollectionServiceBase
{
    public override async Task<StatsResponse> Stats(StatsRequest request, ServerCallContext context)
    {
        var stats = await space.StatsAsync(context.CancellationToken);
        var response = new StatsResponse
        {
            Cases = stats.Cases,
            UnlabelledCases = stats.UnlabelledCases,
            ModelId = space.ModelId,
            Dimensions = space.Dimensions,
            StoreBytes = stats.StoreBytes,
            IndexBytes = stats.IndexBytes,
            Series = stats.Series,
            Studies = stats.Studies,
            Pooling = stats.Volumes.Pooling.ToString().ToLowerInvariant(),
            SlicesPerSeries = stats.Volumes.SlicesPerSeries,
            VolumeDimensions = stats.Volumes.DimensionsFor(space.Dimensions),
            Index = new IndexSettings
            {
                Quantization = stats.Index.Quantization.ToString().ToLowerInvariant(),
                Connectivity = stats.Index.Connectivity,
                ExpansionAdd = stats.Index.ExpansionAdd,
                ExpansionSearch = stats.Index.ExpansionSearch,
                Indexed = stats.Indexed,
                MemoryBytes = stats.IndexMemoryBytes,
            },
        };
        foreach (var (modality, cases) in stats.CasesByModality) response.CasesByModality[modality] = cases;
        foreach (var (label, cases) in stats.CasesByLabel) response.CasesByLabel[label] = cases;
        return response;
    }

    public override async Task<ListLabelsResponse> ListLabels(ListLabelsRequest request, ServerCallContext context)
    {
        var response = new ListLabelsResponse();
        foreach (var (label, cases) in await space.LabelCountsAsync(context.CancellationToken))
            response.Labels.Add(new LabelCount { Label = label, Cases = cases });
        return response;
    }
}
