using System.Text;

namespace MedSearch.Engine;

/// <summary>Labels and metadata for one case from labels.csv.</summary>
public sealed record CaseAnnotation(IReadOnlyList<string> Labels, IReadOnlyDictionary<string, string> Metadata)
{
    /// <summary>What is wrong with a label a caller gives ("labels: ..."), or null: labels are matched exactly, so stray spaces would split one label in two.</summary>
    public static string? LabelProblem(string label) =>
        string.IsNullOrWhiteSpace(label) || label != label.Trim() ? $"labels: `{label}` is empty or has surrounding spaces" : null;
}

/// <summary>
/// labels.csv: a header row; a `path` column (relative to the indexed folder) or a `sop_instance_uid` column;
/// a `labels` column with ';'-separated labels (empty = unlabelled); every other column is metadata.
/// RFC 4180 quoting, UTF-8. Errors name the file and line, because a silently mislabelled case poisons every
/// neighbour vote it takes part in.
/// </summary>
public sealed class LabelsFile
{
    private readonly Dictionary<string, CaseAnnotation> _byKey;

    private LabelsFile(Dictionary<string, CaseAnnotation> byKey) => _byKey = byKey;

    public int Count => _byKey.Count;
    public IEnumerable<string> Keys => _byKey.Keys;

    /// <summary>The annotation for a case key (see <see cref="CaseId"/>), if the file has a row for it.</summary>
    public CaseAnnotation? Find(string caseKey) => _byKey.GetValueOrDefault(caseKey);

    public static LabelsFile Load(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path, Encoding.UTF8);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new CollectionException($"{path}: labels file cannot be read: {e.Message}", e);
        }
        return Parse(text, path);
    }

    public static LabelsFile Parse(string text, string name)
    {
        var rows = ReadRows(text, name);
        if (rows.Count == 0 || rows[0].Fields.All(string.IsNullOrWhiteSpace))
            throw new CollectionException($"{name}: labels file is empty; it needs a header row with `path` or `sop_instance_uid` and `labels`");

        var header = rows[0].Fields.Select(h => h.Trim()).ToArray();
        int pathColumn = Array.IndexOf(header, "path");
        int uidColumn = Array.IndexOf(header, "sop_instance_uid");
        int labelsColumn = Array.IndexOf(header, "labels");
        if (pathColumn < 0 && uidColumn < 0)
            throw new CollectionException($"{name}: header has neither a `path` nor a `sop_instance_uid` column (found: {string.Join(", ", header)})");
        if (labelsColumn < 0)
            throw new CollectionException($"{name}: header has no `labels` column (found: {string.Join(", ", header)})");
        var duplicate = header.GroupBy(h => h).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
            throw new CollectionException($"{name}: column `{duplicate.Key}` appears twice in the header");

        var byKey = new Dictionary<string, CaseAnnotation>(StringComparer.Ordinal);
        foreach (var (line, fields) in rows.Skip(1))
        {
            if (fields.Length == 1 && string.IsNullOrWhiteSpace(fields[0])) continue;
            if (fields.Length != header.Length)
                throw new CollectionException($"{name}:{line}: {fields.Length} fields, the header has {header.Length}");

            string key;
            if (pathColumn >= 0 && fields[pathColumn].Trim() is { Length: > 0 } relative)
                key = CaseId.FileKey(NormaliseRelativePath(relative, name, line));
            else if (uidColumn >= 0 && fields[uidColumn].Trim() is { Length: > 0 } uid)
                key = CaseId.SopKey(uid);
            else
                throw new CollectionException($"{name}:{line}: neither `path` nor `sop_instance_uid` is filled in");

            var labels = fields[labelsColumn].Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Distinct(StringComparer.Ordinal).ToArray();
            var metadata = new SortedDictionary<string, string>(StringComparer.Ordinal);
            for (int c = 0; c < header.Length; c++)
                if (c != pathColumn && c != uidColumn && c != labelsColumn && fields[c].Length > 0)
                    metadata[header[c]] = fields[c];

            if (!byKey.TryAdd(key, new CaseAnnotation(labels, metadata)))
                throw new CollectionException($"{name}:{line}: a second row for {key}");
        }
        return new LabelsFile(byKey);
    }

    private static string NormaliseRelativePath(string relative, string name, int line)
    {
        var path = relative.Replace('\\', '/');
        while (path.StartsWith("./", StringComparison.Ordinal)) path = path[2..];
        if (Path.IsPathRooted(path) || path.Split('/').Contains(".."))
            throw new CollectionException($"{name}:{line}: path `{relative}` must be relative to the indexed folder and stay inside it");
        return path;
    }

    private static List<(int Line, string[] Fields)> ReadRows(string text, string name)
    {
        var rows = new List<(int, string[])>();
        var fields = new List<string>();
        var field = new StringBuilder();
        int line = 1, rowStart = 1;
        bool quoted = false, fieldStarted = false;
        int i = text.Length > 0 && text[0] == '\uFEFF' ? 1 : 0;
        for (; i < text.Length; i++)
        {
            char c = text[i];
            if (quoted)
            {
                if (c == '"')
                {
                    if (i + 1 < text.Length && text[i + 1] == '"') { field.Append('"'); i++; }
                    else quoted = false;
                }
                else
                {
                    if (c == '\n') line++;
                    field.Append(c);
                }
                continue;
            }
            switch (c)
            {
                case '"' when !fieldStarted:
                    quoted = true;
                    fieldStarted = true;
                    break;
                case ',':
                    fields.Add(field.ToString());
                    field.Clear();
                    fieldStarted = false;
                    break;
                case '\r':
                    break;
                case '\n':
                    fields.Add(field.ToString());
                    rows.Add((rowStart, fields.ToArray()));
                    fields.Clear();
                    field.Clear();
                    fieldStarted = false;
                    rowStart = ++line;
                    break;
                default:
                    field.Append(c);
                    fieldStarted = true;
                    break;
            }
        }
        if (quoted) throw new CollectionException($"{name}:{rowStart}: a quoted field is never closed");
        if (fieldStarted || fields.Count > 0)
        {
            fields.Add(field.ToString());
            rows.Add((rowStart, fields.ToArray()));
        }
        return rows;
    }
}
