using System.Globalization;
using System.Text;
using MedSearch.Engine;

namespace MedSearch.Evaluation;

/// <summary>What an export wrote.</summary>
public sealed record ExportSummary(int Cases, int Dimensions, string EmbeddingsPath, string CasesPath);

/// <summary>
/// `medsearch export`: the stored embeddings as a NumPy array and the cases as CSV, row for row, so that other
/// tools (scikit-learn, a notebook, an independent check of our own metrics) see exactly what the index holds.
/// </summary>
public static class CaseExport
{
    public const string EmbeddingsFile = "embeddings.npy";
    public const string CasesFile = "cases.csv";

    /// <summary>
    /// Writes <see cref="EmbeddingsFile"/> (float32, cases × dimensions, C order) and <see cref="CasesFile"/> (row,
    /// id, key, source, labels joined by ';', model_id, then one column per metadata key in use) into
    /// <paramref name="directory"/>, in case-key order. Only cases whose metadata has <paramref name="where"/>'s
    /// value are exported, when it is given.
    /// </summary>
    public static ExportSummary Write(Collection collection, string directory, (string Key, string Value)? where = null)
    {
        Directory.CreateDirectory(directory);
        var cases = collection.Cases()
            .Where(c => where is not { } w || (c.Metadata.TryGetValue(w.Key, out var v) && v == w.Value))
            .Select(c => (c.Id, c.Key, c.Source, Labels: string.Join(';', c.Labels), c.ModelId,
                Metadata: c.Metadata.ToDictionary(p => p.Key, p => p.Value), Embedding: c.Embedding.ToArray()))
            .OrderBy(c => c.Key, StringComparer.Ordinal)
            .ToList();
        int dimensions = collection.Dimensions;
        foreach (var c in cases)
            if (c.Embedding.Length != dimensions)
                throw new CollectionException($"case {c.Key} has {c.Embedding.Length} values, the collection's model makes {dimensions}: reindex first");

        var embeddingsPath = Path.Combine(directory, EmbeddingsFile);
        Embedding.AtomicFile.Write(embeddingsPath, stream =>
        {
            Npy.WriteFloat32Header(stream, cases.Count, dimensions);
            foreach (var c in cases) stream.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(c.Embedding.AsSpan()));
        });

        var metadataKeys = cases.SelectMany(c => c.Metadata.Keys).Distinct().Order(StringComparer.Ordinal).ToArray();
        var csv = new StringBuilder();
        csv.AppendJoin(',', new[] { "row", "id", "key", "source", "labels", "model_id" }.Concat(metadataKeys).Select(Csv.Field)).Append('\n');
        for (int row = 0; row < cases.Count; row++)
        {
            var c = cases[row];
            var fields = new[] { row.ToString(CultureInfo.InvariantCulture), CaseId.Format(c.Id), c.Key, c.Source, c.Labels, c.ModelId }
                .Concat(metadataKeys.Select(k => c.Metadata.GetValueOrDefault(k, "")));
            csv.AppendJoin(',', fields.Select(Csv.Field)).Append('\n');
        }
        var casesPath = Path.Combine(directory, CasesFile);
        Embedding.AtomicFile.Write(casesPath, stream => stream.Write(Encoding.UTF8.GetBytes(csv.ToString())));
        return new ExportSummary(cases.Count, dimensions, embeddingsPath, casesPath);
    }
}

/// <summary>NumPy's .npy format, version 1.0: what numpy.load reads without options.</summary>
internal static class Npy
{
    public static void WriteFloat32Header(Stream stream, int rows, int columns)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("the .npy writer declares little-endian floats");
        var header = $"{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {columns}), }}";
        // The header (with magic, version and length) is padded with spaces and a newline to a multiple of 64 bytes.
        int unpadded = 10 + header.Length + 1;
        header += new string(' ', (64 - unpadded % 64) % 64) + "\n";
        var bytes = Encoding.ASCII.GetBytes(header);
        stream.Write([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0]);
        stream.Write(BitConverter.GetBytes((ushort)bytes.Length));
        stream.Write(bytes);
    }
}

/// <summary>RFC 4180 fields: quoted when they hold a comma, quote or line break.</summary>
internal static class Csv
{
    public static string Field(string value) =>
        value.AsSpan().IndexOfAny(",\"\r\n") < 0 ? value : "\"" + value.Replace("\"", "\"\"") + "\"";
}
