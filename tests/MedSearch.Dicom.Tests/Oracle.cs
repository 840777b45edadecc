using MedSearch.Tests.Support;

namespace MedSearch.Dicom.Tests;

/// <summary>One row of datasets/dicom/oracle.tsv: pydicom 2.3.1 + GDCM's reading of a corpus file.</summary>
public sealed record OracleRow(IReadOnlyDictionary<string, string> Fields)
{
    public string Path => Fields["path"];
    public string FullPath => System.IO.Path.Combine(SharedData.Require("dicom"), Path);
    public string Status => Fields["status"];
    public string TransferSyntax => Fields["transfer_syntax"];
    public string this[string column] => Fields[column];

    public static readonly HashSet<string> NativeSyntaxes =
        ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2"];

    public bool IsNative => NativeSyntaxes.Contains(TransferSyntax);

    public static IReadOnlyList<OracleRow> Load()
    {
        var lines = File.ReadAllLines(System.IO.Path.Combine(SharedData.Require("dicom"), "oracle.tsv"));
        var header = lines[0].Split('\t');
        return [.. lines.Skip(1).Where(l => l.Length > 0).Select(line =>
        {
            var cells = line.Split('\t');
            return new OracleRow(header.Select((name, i) => (name, value: i < cells.Length ? cells[i] : ""))
                .ToDictionary(p => p.name, p => p.value));
        })];
    }
}
