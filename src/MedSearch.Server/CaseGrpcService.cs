using Grpc.Core;
using MedSearch.Engine;
using MedSearch.Protocol.V1;

namespace MedSearch.Server;

/// <summary>Stored cases as such: deletion now; get, relabel and ingest grow here.</summary>
public sealed class CaseGrpcService(Collection collection) : CaseService.CaseServiceBase
{
    public override Task<DeleteResponse> Delete(DeleteRequest request, ServerCallContext context)
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
        if (string.IsNullOrWhiteSpace(value))
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"{field}: empty"));
        var keys = collection.Delete(scope, value.Trim());
        var response = new DeleteResponse { Deleted = keys.Count };
        response.Keys.Add(keys);
        return Task.FromResult(response);
    }
}
