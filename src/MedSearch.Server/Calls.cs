using Grpc.Core;
using MedSearch.Engine;
using MedSearch.Imaging;
using MedSearch.Protocol.V1;

namespace MedSearch.Server;

/// <summary>What the gRPC services share: domain errors to status codes, and protobuf to domain types and back.</summary>
internal static class Calls
{
    public static RpcException Invalid(string message) => new(new Status(StatusCode.InvalidArgument, message));

    /// <summary>
    /// Runs a case space call, turning its exceptions into the statuses the contract promises; messages from
    /// checks that do not name their field get <paramref name="field"/> in front.
    /// </summary>
    public static T Run<T>(Func<T> call, string field = "")
    {
        try
        {
            return call();
        }
        catch (Exception e) when (StatusOf(e, field) is { } status)
        {
            throw status;
        }
    }

    /// <summary><see cref="Run{T}"/> for an asynchronous call.</summary>
    public static async Task<T> RunAsync<T>(Func<Task<T>> call, string field = "")
    {
        try
        {
            return await call();
        }
        catch (Exception e) when (StatusOf(e, field) is { } status)
        {
            throw status;
        }
    }

    /// <summary>
    /// Runs a call's handler, turning the <see cref="OperationCanceledException"/> that stopped its work into the
    /// status the contract promises: DEADLINE_EXCEEDED once the call's deadline has passed (Grpc.AspNetCore
    /// cancels <see cref="ServerCallContext.CancellationToken"/> then), CANCELLED when the client gave up first.
    /// The client's own library reports the same codes; this keeps the server's logs and audit records honest.
    /// </summary>
    public static async Task<T> Stoppable<T>(ServerCallContext context, Func<Task<T>> handler)
    {
        try
        {
            return await handler();
        }
        catch (OperationCanceledException) when (context.CancellationToken.IsCancellationRequested || context.Deadline <= DateTime.UtcNow)
        {
            throw context.Deadline <= DateTime.UtcNow
                ? new RpcException(new Status(StatusCode.DeadlineExceeded, "the call's deadline passed before the work was done; it was stopped"))
                : new RpcException(new Status(StatusCode.Cancelled, "the client cancelled the call; its work was stopped"));
        }
    }

    /// <summary>The status a domain exception becomes; null for any other exception, which stays a server error.</summary>
    private static RpcException? StatusOf(Exception e, string field)
    {
        string Named(string message)
        {
            if (field.Length == 0 || message.StartsWith(field, StringComparison.Ordinal)) return message;
            // A check naming a part of the field ("embedding.model_id" under "search.embedding") gets the field's parents in front.
            int dot = field.LastIndexOf('.');
            return dot > 0 && message.StartsWith(field[(dot + 1)..] + ".", StringComparison.Ordinal) ? field[..(dot + 1)] + message : $"{field}: {message}";
        }
        return e switch
        {
            ImageDecodeException => Invalid(Named(e.Message)),
            CaseNotFoundException => new RpcException(new Status(StatusCode.NotFound, Named(e.Message))),
            ModelMismatchException => new RpcException(new Status(StatusCode.FailedPrecondition, Named(e.Message))),
            CaseSpaceUnavailableException => new RpcException(new Status(StatusCode.Unavailable, e.Message)),
            ArgumentException argument => Invalid(Named(Reason(argument))),
            _ => null,
        };
    }

    /// <summary>The message without the " (Parameter 'x')" that ArgumentException appends: our messages name the field already.</summary>
    private static string Reason(ArgumentException e) =>
        e.ParamName is { } name ? e.Message.Replace($" (Parameter '{name}')", "", StringComparison.Ordinal) : e.Message;

    public static CaseFilter ToFilter(Filter? filter, string prefix)
    {
        if (filter is null) return CaseFilter.None;
        static IReadOnlyList<string> Values(IEnumerable<string> values, string field)
        {
            var list = values.Select(v => v.Trim()).ToList();
            if (list.Any(v => v.Length == 0)) throw Invalid($"{field}: contains an empty value");
            return list;
        }
        double? Age(bool has, double value, string field)
        {
            if (!has) return null;
            if (!double.IsFinite(value) || value < 0) throw Invalid($"{prefix}{field}: must be a non-negative number of years, got {value}");
            return value;
        }
        DateOnly? Date(string text, string field)
        {
            try
            {
                return CaseFilter.ParseDate(text, prefix + field);
            }
            catch (ArgumentException e)
            {
                throw Invalid(Reason(e));
            }
        }
        var result = new CaseFilter
        {
            Modalities = Values(filter.Modalities, prefix + "modalities"),
            BodyParts = Values(filter.BodyParts, prefix + "body_parts"),
            ViewPositions = Values(filter.ViewPositions, prefix + "view_positions"),
            Lateralities = Values(filter.Lateralities, prefix + "lateralities"),
            Sexes = Values(filter.Sexes, prefix + "sexes"),
            MinAge = Age(filter.HasMinAgeYears, filter.MinAgeYears, "min_age_years"),
            MaxAge = Age(filter.HasMaxAgeYears, filter.MaxAgeYears, "max_age_years"),
            StudyDateFrom = Date(filter.StudyDateFrom, "study_date_from"),
            StudyDateTo = Date(filter.StudyDateTo, "study_date_to"),
            LabelsAny = Values(filter.LabelsAny, prefix + "labels_any"),
            LabelsAll = Values(filter.LabelsAll, prefix + "labels_all"),
            LabelsNone = Values(filter.LabelsNone, prefix + "labels_none"),
            Metadata = filter.Metadata.ToDictionary(p => p.Key, p => p.Value),
        };
        if (result.MinAge > result.MaxAge) throw Invalid($"{prefix}min_age_years: {result.MinAge} is above max_age_years {result.MaxAge}");
        if (result.StudyDateFrom > result.StudyDateTo) throw Invalid($"{prefix}study_date_from: {result.StudyDateFrom:yyyy-MM-dd} is after study_date_to {result.StudyDateTo:yyyy-MM-dd}");
        if (filter.Metadata.Keys.Any(string.IsNullOrWhiteSpace)) throw Invalid($"{prefix}metadata: contains an empty key");
        return result;
    }

    public static Protocol.V1.Neighbour ToNeighbour(Engine.Neighbour n, bool includeThumbnail)
    {
        var record = n.Case;
        var neighbour = new Protocol.V1.Neighbour
        {
            Rank = n.Rank,
            Similarity = n.Similarity,
            CaseId = CaseId.Format(record.Id),
            Key = record.Key,
            Source = record.Source,
            StudyInstanceUid = record.Metadata.GetValueOrDefault("study_instance_uid") ?? "",
            SeriesInstanceUid = record.Metadata.GetValueOrDefault("series_instance_uid") ?? "",
            SopInstanceUid = record.Metadata.GetValueOrDefault("sop_instance_uid") ?? "",
        };
        neighbour.Labels.Add(record.Labels);
        neighbour.Metadata.Add(record.Metadata);
        if (includeThumbnail) neighbour.Thumbnail = record.Thumbnail;
        if (n.BestSlices is { } pair)
        {
            neighbour.BestSlices = new Protocol.V1.SlicePair { QuerySlice = pair.QuerySlice, HitSliceKey = pair.HitSliceKey, Similarity = pair.Similarity };
            if (includeThumbnail)
            {
                neighbour.BestSlices.QueryThumbnail = Google.Protobuf.ByteString.CopyFrom(pair.QueryThumbnail);
                neighbour.BestSlices.HitThumbnail = Google.Protobuf.ByteString.CopyFrom(pair.HitThumbnail);
            }
        }
        return neighbour;
    }

    public static CaseInfo ToCaseInfo(Storage.Records.CaseRecord record, bool includeEmbedding, bool includeThumbnail)
    {
        var info = new CaseInfo
        {
            CaseId = CaseId.Format(record.Id),
            Key = record.Key,
            Source = record.Source,
            ModelId = record.ModelId,
            IndexedUnixMs = record.IndexedUnixMs,
            Width = record.Width,
            Height = record.Height,
        };
        info.Labels.Add(record.Labels);
        info.Metadata.Add(record.Metadata);
        if (includeEmbedding) info.Embedding.Add(record.Embedding);
        if (includeThumbnail) info.Thumbnail = record.Thumbnail;
        return info;
    }
}
