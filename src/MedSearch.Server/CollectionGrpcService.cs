using Grpc.Core;
using MedSearch.Engine;
using MedSearch.Protocol.V1;

namespace MedSearch.Server;

/// <summary>The collection as a whole: what it holds and how it is indexed.</summary>
public sealed class CollectionGrpcService(Collection collection) : CollectionService.CollectionServiceBase
{
    public override Task<StatsResponse> Stats(StatsRequest request, ServerCallContext context)
    {
        var stats = collection.Stats();
        var response = new StatsResponse
        {
            Cases = stats.Cases,
            UnlabelledCases = stats.UnlabelledCases,
            ModelId = collection.ModelId,
            Dimensions = collection.Dimensions,
            StoreBytes = stats.StoreBytes,
            IndexBytes = stats.IndexBytes,
            Series = stats.Series,
            Studies = stats.Studies,
            Pooling = stats.Volumes.Pooling.ToString().ToLowerInvariant(),
            SlicesPerSeries = stats.Volumes.SlicesPerSeries,
            VolumeDimensions = stats.Volumes.DimensionsFor(collection.Dimensions),
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
        return Task.FromResult(response);
    }

    public override Task<ListLabelsResponse> ListLabels(ListLabelsRequest request, ServerCallContext context)
    {
        var response = new ListLabelsResponse();
        foreach (var (label, cases) in collection.LabelCounts())
            response.Labels.Add(new LabelCount { Label = label, Cases = cases });
        return Task.FromResult(response);
    }
}
