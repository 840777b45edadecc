using Grpc.Core;
using MedSearch.Engine;
using MedSearch.Imaging;
using MedSearch.Protocol.V1;

namespace MedSearch.Server;

/// <summary>
/// Translates the public protobuf contract to collection calls and back; validation of the request happens
/// here, at the edge, so that every bad input becomes INVALID_ARGUMENT naming the field.
/// </summary>
public sealed class SearchGrpcService(Collection collection) : SearchService.SearchServiceBase
{
    public const int DefaultK = 10;

    public override Task<SearchResponse> Search(SearchRequest request, ServerCallContext context)
    {
        int k = request.HasK ? request.K : DefaultK;
        if (k < 1 || k > collection.MaxNeighbours)
            throw Invalid($"k must be between 1 and {collection.MaxNeighbours}, got {k}");

        var result = request.QueryCase switch
        {
            SearchRequest.QueryOneofCase.Image => Run(() => collection.SearchImage(request.Image.Memory, ImageName(request), k)),
            SearchRequest.QueryOneofCase.CaseId => Run(() => collection.SearchCase(request.CaseId, k, request.ExcludeQueryCase)),
            _ => throw Invalid("query: set `image` (file bytes) or `case_id`"),
        };
        return Task.FromResult(ToResponse(result));
    }

    private static string ImageName(SearchRequest request) =>
        request.ImageName is { Length: > 0 } name ? $"image ({name})" : "image";

    private static SearchResult Run(Func<SearchResult> search)
    {
        try
        {
            return search();
        }
        catch (ImageDecodeException e)
        {
            throw Invalid(e.Message);
        }
        catch (CaseNotFoundException e)
        {
            throw new RpcException(new Status(StatusCode.NotFound, $"case_id: {e.Message}"));
        }
        catch (ModelMismatchException e)
        {
            throw new RpcException(new Status(StatusCode.FailedPrecondition, e.Message));
        }
    }

    private static RpcException Invalid(string message) => new(new Status(StatusCode.InvalidArgument, message));

    private static SearchResponse ToResponse(SearchResult result)
    {
        var response = new SearchResponse { ModelId = result.ModelId, UnlabelledNeighbours = result.UnlabelledNeighbours };
        foreach (var n in result.Neighbours)
        {
            var neighbour = new Protocol.V1.Neighbour
            {
                Rank = n.Rank,
                Similarity = n.Similarity,
                CaseId = CaseId.Format(n.Case.Id),
                Key = n.Case.Key,
                Source = n.Case.Source,
            };
            neighbour.Labels.Add(n.Case.Labels);
            neighbour.Metadata.Add(n.Case.Metadata);
            response.Neighbours.Add(neighbour);
        }
        foreach (var v in result.Votes)
            response.Votes.Add(new Protocol.V1.LabelVote { Label = v.Label, Score = v.Score, Neighbours = v.Neighbours });
        return response;
    }
}
