using Grpc.Core;
using MedSearch.Engine;
using MedSearch.Protocol.V1;

namespace MedSearch.Server;

/// <summary>Stored cases as such: get, relabel, delete; ingest is in CaseGrpcService.Ingest.cs.</summary>
public sealed partial class CaseGrpcService(ICaseSpace space, InferenceGate inference) : CaseService.CaseServiceBase
{
    public override async Task<DeleteResponse> Delete(DeleteRequest request, ServerCallContext context)
    {
        var (scope, value, field) = request.SelectorCase switch
        {
            DeleteRequest.SelectorOneofCase.CaseId => (DeleteScope.Case, request.CaseId, "case_id"),
            DeleteRequest.SelectorOneofCase.SeriesInstanceUid => (DeleteScope.Series, request.SeriesInstanceUid, "series_instance_uid"),
            DeleteRequest.SelectorOneofCase.StudyInstanceUid => (DeleteScope.Study, request.StudyInstanceUid, "study_instance_uid"),
            DeleteRequest.SelectorOneofCase.PatientId => (DeleteScope.Patient, request.PatientId, "patient_id"),
            DeleteRequest.SelectorOneofCase.PatientHash => (DeleteScope.PatientHash, request.PatientHash, "patient_hash"),
            _ => throw new RpcException(new Status(StatusCode.InvalidArgument, "selector: set one of case_id, series_instance_uid, study_instance_uid, patient_id, patient_hash")),
        };
        // Refused here, at the edge, as well as in the engine: a cluster would send an empty value to every shard,
        // and a shard's refusal reads to the gateway as a shard that did not answer (UNAVAILABLE).
        if (string.IsNullOrWhiteSpace(value)) throw Calls.Invalid($"{field}: empty, so nothing to delete by");
        // The case space's other errors come back naming the field set.
        var keys = await Calls.RunAsync(() => space.DeleteAsync(scope, value.Trim(), context.CancellationToken), field);
        var response = new DeleteResponse { Deleted = keys.Count };
        response.Keys.Add(keys);
        return response;
    }

    public override async Task<CaseInfo> Get(GetRequest request, ServerCallContext context)
    {
        if (string.IsNullOrWhiteSpace(request.CaseId)) throw Calls.Invalid("case_id: empty");
        var record = await Calls.RunAsync(() => space.FindCaseAsync(request.CaseId, context.CancellationToken), "case_id");
        return Calls.ToCaseInfo(record, request.IncludeEmbedding, request.IncludeThumbnail);
    }

    public override async Task<CaseInfo> UpdateLabels(UpdateLabelsRequest request, ServerCallContext context)
    {
        if (string.IsNullOrWhiteSpace(request.CaseId)) throw Calls.Invalid("case_id: empty");
        if (!request.Replace && request.Add.Count == 0 && request.Remove.Count == 0)
            throw Calls.Invalid("add: nothing to change (give labels to add or remove, or replace)");
        // Checked here, each naming `add` or `remove`, so that what the case space refuses is only about case_id.
        if (CaseAnnotation.LabelChangeProblem(request.Replace, request.Add, request.Remove) is { } problem) throw Calls.Invalid(problem);
        var record = await Calls.RunAsync(
            () => space.UpdateLabelsAsync(request.CaseId, request.Replace, request.Add, request.Remove, context.CancellationToken), "case_id");
        return Calls.ToCaseInfo(record, includeEmbedding: false, includeThumbnail: false);
    }
}
