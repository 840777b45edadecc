using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;
using MedSearch.Dicom.Tests;
using MedSearch.Engine;
using MedSearch.Protocol.V1;
using Xunit;

namespace MedSearch.EndToEnd.Tests;

/// <summary>
/// Search by a DICOM's raw SOP Instance UID (not its `sop:` key), and the patient/study exclusions of a DICOM query,
/// on synthetic DICOMs ingested over gRPC: no shared data needed.
/// </summary>
public sealed class DicomQueryTests : IDisposable
{
    private const ushort Side = 64;
    private readonly string _data = Path.Combine(Path.GetTempPath(), "medsearch-dicomquery-" + Guid.NewGuid().ToString("N")[..8]);

    public void Dispose()
    {
        try { Directory.Delete(_data, recursive: true); } catch (IOException) { }
    }

    /// <summary>An 8-bit MONOCHROME2 instance of the given patient, study and SOP Instance UID; <paramref name="seed"/> draws its pixels.</summary>
    private static byte[] Instance(string sopUid, string studyUid, string patientId, int seed)
    {
        var random = new Random(seed);
        var pixels = new byte[Side * Side];
        int cx = random.Next(8, Side - 8), cy = random.Next(8, Side - 8), radius = random.Next(6, 20);
        for (int y = 0; y < Side; y++)
            for (int x = 0; x < Side; x++)
            {
                int d2 = (x - cx) * (x - cx) + (y - cy) * (y - cy);
                pixels[y * Side + x] = (byte)(d2 < radius * radius ? 200 + random.Next(40) : (x * seed + y * 3) % 90);
            }
        var dataset = new DicomBuilder()
            .String(0x0008, 0x0016, "UI", DicomBuilder.SecondaryCapture)
            .String(0x0008, 0x0018, "UI", sopUid)
            .String(0x0008, 0x0060, "CS", "CR")
            .String(0x0010, 0x0020, "LO", patientId)
            .String(0x0020, 0x000D, "UI", studyUid)
            .String(0x0020, 0x000E, "UI", studyUid + ".1")
            .ImagePixel(Side, Side)
            .NativePixelData(pixels, 8)
            .ToArray();
        return DicomBuilder.Part10("1.2.840.10008.1.2.1", dataset);
    }

    [Fact]
    public async Task Search_by_a_raw_sop_instance_uid_finds_the_case_and_excludes_its_patient_and_study()
    {
        const string query = "1.2.826.0.1.3680043.77.1.1", sameStudy = "1.2.826.0.1.3680043.77.1.2",
            otherStudy = "1.2.826.0.1.3680043.77.1.3", otherPatient = "1.2.826.0.1.3680043.77.1.4";
        const string studyA = "1.2.826.0.1.3680043.77.2.1", studyB = "1.2.826.0.1.3680043.77.2.2", studyC = "1.2.826.0.1.3680043.77.2.3";
        var files = new Dictionary<string, byte[]>
        {
            [query] = Instance(query, studyA, "PAT-A", 1),
            [sameStudy] = Instance(sameStudy, studyA, "PAT-A", 2),
            [otherStudy] = Instance(otherStudy, studyB, "PAT-A", 3),
            [otherPatient] = Instance(otherPatient, studyC, "PAT-B", 4),
        };
        await using var server = await RunningServer.StartAsync(_data);
        using var channel = GrpcChannel.ForAddress(server.Address);
        var cases = new CaseService.CaseServiceClient(channel);
        var search = new SearchService.SearchServiceClient(channel);

        using (var call = cases.Ingest())
        {
            foreach (var (uid, bytes) in files)
                await call.RequestStream.WriteAsync(new IngestRequest { Name = uid + ".dcm", File = ByteString.CopyFrom(bytes) });
            await call.RequestStream.CompleteAsync();
            await foreach (var result in call.ResponseStream.ReadAllAsync())
                Assert.True(result.Outcome == IngestOutcome.Stored, $"{result.Outcome}: {result.Reason}");
        }

        // The raw UID, which is neither a case id nor a key, names the stored case.
        var byUid = await search.SearchAsync(new SearchRequest { CaseId = query, K = 10 });
        Assert.Equal(CaseId.SopKey(query), byUid.Neighbours[0].Key);
        Assert.Equal(1f, byUid.Neighbours[0].Similarity, 3);
        Assert.Equal(files.Keys.Select(CaseId.SopKey).Order(), byUid.Neighbours.Select(n => n.Key).Order());

        async Task<IEnumerable<string>> Hits(SearchRequest request) =>
            (await search.SearchAsync(request)).Neighbours.Select(n => n.Key[CaseId.SopPrefix.Length..]).Order();
        var fromImage = new Func<SearchRequest>(() => new SearchRequest { Image = ByteString.CopyFrom(files[query]), ImageName = "query.dcm", K = 10 });
        foreach (var request in new[] { () => new SearchRequest { CaseId = query, K = 10 }, fromImage })
        {
            var samePatient = request();
            samePatient.ExcludeSamePatient = true;
            Assert.Equal([otherPatient], await Hits(samePatient));
            var sameStudyOut = request();
            sameStudyOut.ExcludeSameStudy = true;
            Assert.Equal(new[] { otherStudy, otherPatient }.Order(), await Hits(sameStudyOut));
        }
        // Without exclusions the image query finds its own stored case first.
        Assert.Equal(CaseId.SopKey(query), (await search.SearchAsync(fromImage())).Neighbours[0].Key);
    }
}
