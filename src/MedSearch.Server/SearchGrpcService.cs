using Grpc.Core;
using MedSearch.Engine;
using MedSearch.Protocol.V1;

namespace MedSearch.Server;

/// <summary>
/// Translates the public protobuf contract to case space calls and back; validation of the request happens
/// here, at the edge, so that every bad input becomes INVALID_ARGUMENT naming the field.
/// </summary>
public sealed class SearchGrpcService(ICaseSpace space, InferenceGate inference) : SearchService.SearchServiceBase
{
    public const int DefaultK = 10;
    public const double DefaultTemperature = 0.1;

    public override Task<SearchResponse> Search(SearchRequest request, ServerCallContext context) =>
        Calls.Stoppable(context, () => SearchAsync(request, context));

    public override Task<ClassifyResponse> Classify(ClassifyRequest request, ServerCallContext context) =>
        Calls.Stoppable(context, () => ClassifyAsync(request, context));

    private async Task<SearchResponse> SearchAsync(SearchRequest request, ServerCallContext context)
    {
        var (query, options) = await Prepare(request, "", context);
        var result = await Calls.RunAsync(() => space.SearchAsync(query, options, context.CancellationToken));
        var response = new SearchResponse { ModelId = result.ModelId, UnlabelledNeighbours = result.UnlabelledNeighbours, Partial = result.Partial };
        response.Missing.Add(result.Missing ?? []);
        response.Neighbours.Add(result.Neighbours.Select(n => Calls.ToNeighbour(n, request.IncludeThumbnails)));
        response.Warnings.Add(query.Warnings ?? []);
        if (request.IncludeQueryPreview) response.QueryPreview = Preview(query);
        foreach (var v in result.Votes)
            response.Votes.Add(new Protocol.V1.LabelVote { Label = v.Label, Score = v.Score, Neighbours = v.Neighbours });
        return response;
    }

    private async Task<ClassifyResponse> ClassifyAsync(ClassifyRequest request, ServerCallContext context)
    {
        if (request.Search is null) throw Calls.Invalid("search: the query is missing (set search.image, search.case_id or search.embedding)");
        var weighting = request.Weighting switch
        {
            Protocol.V1.Weighting.Uniform => Engine.Weighting.Uniform,
            Protocol.V1.Weighting.Similarity => Engine.Weighting.Similarity,
            Protocol.V1.Weighting.Softmax => Engine.Weighting.Softmax,
            _ => throw Calls.Invalid($"weighting: {request.Weighting} is not one of UNIFORM, SIMILARITY, SOFTMAX"),
        };
        double temperature = request.HasTemperature ? request.Temperature : DefaultTemperature;
        if (!(temperature > 0) || !double.IsFinite(temperature)) throw Calls.Invalid($"temperature: must be a positive number, got {temperature}");

        var (query, options) = await Prepare(request.Search, "search.", context);
        var result = await Calls.RunAsync(() => space.ClassifyAsync(query, options, weighting, temperature, context.CancellationToken));
        var response = new ClassifyResponse { ModelId = result.ModelId, UnlabelledNeighbours = result.UnlabelledNeighbours, Partial = result.Partial };
        response.Missing.Add(result.Missing ?? []);
        response.Neighbours.Add(result.Neighbours.Select(n => Calls.ToNeighbour(n, request.Search.IncludeThumbnails)));
        response.Warnings.Add(query.Warnings ?? []);
        if (request.Search.IncludeQueryPreview) response.QueryPreview = Preview(query);
        foreach (var d in result.Labels)
        {
            response.Labels.Add(new Protocol.V1.LabelDecision
            {
                Label = d.Label,
                Score = d.Score,
                Threshold = d.Threshold,
                Positive = d.Positive,
                Neighbours = d.Neighbours,
                OperatingPoint = d.OperatingPoint,
            });
        }
        return response;
    }

    /// <summary>The query (embedding an image in an inference slot) and the options; field names are prefixed with <paramref name="prefix"/>.</summary>
    private async Task<(Query, SearchOptions)> Prepare(SearchRequest request, string prefix, ServerCallContext context)
    {
        int k = request.HasK ? request.K : DefaultK;
        if (k < 1 || k > space.MaxNeighbours)
            throw Calls.Invalid($"{prefix}k: must be between 1 and {space.MaxNeighbours}, got {k}");
        var options = new SearchOptions
        {
            K = k,
            Filter = Calls.ToFilter(request.Filter, prefix + "filter."),
            ExcludeQueryCase = request.ExcludeQueryCase,
            ExcludeSamePatient = request.ExcludeSamePatient,
            ExcludeSameStudy = request.ExcludeSameStudy,
            OnePerStudy = request.OnePerStudy,
            WithThumbnails = request.IncludeThumbnails,
            Deadline = context.Deadline,
        };
        var level = request.Level switch
        {
            Protocol.V1.Level.Instance => VolumeLevel.Instance,
            Protocol.V1.Level.Series => VolumeLevel.Series,
            Protocol.V1.Level.Study => VolumeLevel.Study,
            _ => throw Calls.Invalid($"{prefix}level: {request.Level} is not one of INSTANCE, SERIES, STUDY"),
        };
        var query = (request.QueryCase, level) switch
        {
            (SearchRequest.QueryOneofCase.Images, VolumeLevel.Instance) =>
                throw Calls.Invalid($"{prefix}images: a set of files is a series or study query; set level to SERIES or STUDY (or send one file as image)"),
            (SearchRequest.QueryOneofCase.Image, not VolumeLevel.Instance) =>
                throw Calls.Invalid($"{prefix}image: one file is an instance query; at {prefix}level {request.Level} send the series' files as images"),
            (SearchRequest.QueryOneofCase.Images, _) => await VolumeImagesQuery(request, level, prefix, context),
            (SearchRequest.QueryOneofCase.CaseId, _) =>
                await Calls.RunAsync(() => space.StoredQueryAsync(level, request.CaseId, context.CancellationToken), prefix + "case_id"),
            (SearchRequest.QueryOneofCase.Embedding, _) => Calls.Run(
                () => space.Queries.Embedding(request.Embedding.Values, level, request.Embedding.ModelId), prefix + "embedding"),
            _ => await ImageQuery(request, prefix, context),
        };
        if (options.ExcludeQueryCase && query.CaseId == 0)
            throw Calls.Invalid($"{prefix}exclude_query_case: only a stored-case query (case_id) has a case to exclude");
        return (query, options);
    }

    private async Task<Query> VolumeImagesQuery(SearchRequest request, VolumeLevel level, string prefix, ServerCallContext context)
    {
        var set = request.Images;
        if (set.Files.Count == 0) throw Calls.Invalid($"{prefix}images: no files");
        if (set.Names.Count != 0 && set.Names.Count != set.Files.Count)
            throw Calls.Invalid($"{prefix}images.names: {set.Names.Count} names for {set.Files.Count} files (give one per file, or none)");
        var files = set.Files.Select((f, i) => (f.Memory, set.Names.Count > 0 ? set.Names[i] : $"file {i + 1}")).ToList();
        var skipped = new List<string>();
        return await inference.RunAsync(() => Calls.Run(() => space.Queries.Images(level, files, skipped, context.CancellationToken), prefix + "images"), context.CancellationToken);
    }

    private async Task<Query> ImageQuery(SearchRequest request, string prefix, ServerCallContext context) => request.QueryCase switch
    {
        SearchRequest.QueryOneofCase.Image when request.Image.IsEmpty => throw Calls.Invalid($"{prefix}image: empty (0 bytes)"),
        SearchRequest.QueryOneofCase.Image => await inference.RunAsync(
            () => Calls.Run(() => space.Queries.Image(request.Image.Memory, ImageName(request), context.CancellationToken), prefix + "image"), context.CancellationToken),
        _ => throw Calls.Invalid($"{prefix}query: set `image` (file bytes), `case_id`, `embedding` or, for a series or study, `images`"),
    };

    /// <summary>The preview a viewer shows: the image the encoder saw, 8-bit, longest side at most 512.</summary>
    private static Google.Protobuf.ByteString Preview(Query query) =>
        query.Image is { } image ? Google.Protobuf.ByteString.CopyFrom(image.ToThumbnailPng(maxSide: 512)) : Google.Protobuf.ByteString.Empty;

    private static string ImageName(SearchRequest request) =>
        request.ImageName is { Length: > 0 } name ? $"image ({name})" : "image";
}
