using System.Text;

namespace MedSearch.Engine;

/// <summary>Labels and metadata for one case from labels.csv.</summary>
public sealed record CaseAnnotation(IReadOnlyList<string> Labels, IReadOnlyDictionary<string, string> Metadata)
{
    /// <summary>What is wrong with a label a caller gives ("<paramref name="field"/>: ..."), or null: labels are matched exactly, so stray spaces would split one label in two.</summary>
    public static string? LabelProblem(string label, string field = "labels") =>
        string.IsNullOrWhiteSpace(label) || label != label.Trim() ? $"{field}: `{label}` is empty or has surrounding spaces" : null;

    /// <summary>
    /// What is wrong with a change of a case's labels, naming the field (`add` or `remove`), or null; the checks of
    /// <see cref="Collection.UpdateLabels"/>, for callers that must refuse a bad change before looking the case up.
    /// </summary>
    public static string? LabelChangeProblem(bool replace, IEnumerable<string> add, IEnumerable<string> remove)
    {
        if (replace && remove.Any()) return "remove: with replace the labels become exactly `add`; give no labels to remove";
        foreach (var label in add)
            if (LabelProblem(label, "add") is { } problem) return problem;
        foreach (var label in remove)
            if (LabelProblem(label, "remove") is { } problem) return problem;
        return null;
    }
}

/// <summary>
/// labels.csv: a header row; one or more key columns — `path` (relative to the indexed folder), `sop_instance_uid`,
/// `study_instance_uid` — of which each row fills exactly one; a `labels` column with ';'-separated labels
/// (empty = unlabelled); every other column is metadata. A study row labels every instance of that study that has
/// no row of its own (see <see cref="For"/>). RFC 4180 quoting, UTF-8. Errors name the file and line, because a
/// silently mislabelled case poisons every neighbour vote it takes part in.
/// </summary>
public sealed class LabelsFile
{
    /// <summary>How a study row is named in errors and reports (`study:&lt;Study Instance UID&gt;`); not a case key.</summary>
    public const string StudyPrefix = "study:";

    private static readonly string[] KeyColumns = ["path", "sop_instance_uid", "study_instance_uid"];

    private readonly Dictionary<string, CaseAnnotation> _byKey;
    private readonly Dictionary<string, CaseAnnotation> _byStudy;

    private LabelsFile(Dictionary<string, CaseAnnotation> byKey, Dictionary<string, CaseAnnotation> byStudy)
    {
        _byKey = byKey;
        _byStudy = byStudy;
    }

    /// <summary>Rows of the file: instance rows and study rows.</summary>
    public int Count => _byKey.Count + _byStudy.Count;

    /// <summary>The case keys of the instance rows (`path` and `sop_instance_uid`).</summary>
    public IEnumerable<string> Keys => _byKey.Keys;

    /// <summary>The Study Instance UIDs of the study rows.</summary>
    public IEnumerable<string> StudyInstanceUids => _byStudy.Keys;

    /// <summary>The annotation of the instance row for a case key (see <see cref="CaseId"/>), if the file has one; study rows aside.</summary>
    public CaseAnnotation? Find(string caseKey) => _byKey.GetValueOrDefault(caseKey);

    /// <summary>The annotation of the study row for a Study Instance UID, if the file has one.</summary>
    public CaseAnnotation? FindStudy(string studyInstanceUid) => _byStudy.GetValueOrDefault(studyInstanceUid.Trim());

    /// <summary>
    /// The annotation a case gets: its own row (by case key) when it has one, the more specific; else its study's
    /// row, when <paramref name="studyInstanceUid"/> is given and the file has one; else null.
    /// </summary>
    public CaseAnnotation? For(string caseKey, string? studyInstanceUid) =>
        Find(caseKey) ?? (string.IsNullOrWhiteSpace(studyInstanceUid) ? null : FindStudy(studyInstanceUid));

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
            throw new CollectionException($"{name}: labels file is empty; it needs a header row with `path`, `sop_instance_uid` or `study_instance_uid` and `labels`");

        var header = rows[0].Fields.Select(h => h.Trim()).ToArray();
        int pathColumn = Array.IndexOf(header, "path");
        int uidColumn = Array.IndexOf(header, "sop_instance_uid");
        int studyColumn = Array.IndexOf(header, "study_instance_uid");
        int labelsColumn = Array.IndexOf(header, "labels");
        if (pathColumn < 0 && uidColumn < 0 && studyColumn < 0)
            throw new CollectionException($"{name}: header has no key column, one of `path`, `sop_instance_uid` or `study_instance_uid` (found: {string.Join(", ", header)})");
        if (labelsColumn < 0)
            throw new CollectionException($"{name}: header has no `labels` column (found: {string.Join(", ", header)})");
        var duplicate = header.GroupBy(h => h).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
            throw new CollectionException($"{name}: column `{duplicate.Key}` appears twice in the header");
        var keyColumns = new[] { pathColumn, uidColumn, studyColumn }.Where(c => c >= 0).ToArray();
        string KeyNames(int[] columns, string conjunction) =>
            string.Join(", ", columns[..^1].Select(c => $"`{header[c]}`")) + (columns.Length > 1 ? $" {conjunction} " : "") + $"`{header[columns[^1]]}`";

        var byKey = new Dictionary<string, CaseAnnotation>(StringComparer.Ordinal);
        var byStudy = new Dictionary<string, CaseAnnotation>(StringComparer.Ordinal);
        foreach (var (line, fields) in rows.Skip(1))
        {
            if (fields.Length == 1 && string.IsNullOrWhiteSpace(fields[0])) continue;
            if (fields.Length != header.Length)
                throw new CollectionException($"{name}:{line}: {fields.Length} fields, the header has {header.Length}");

            var filled = keyColumns.Where(c => fields[c].Trim().Length > 0).ToArray();
            // An instance row may name its study too: the study UID is then that row's metadata, not its key.
            if (filled.Length > 1 && filled.Contains(studyColumn)) filled = filled.Where(c => c != studyColumn).ToArray();
            if (filled.Length == 0)
                throw new CollectionException(keyColumns.Length == 1
                    ? $"{name}:{line}: `{header[keyColumns[0]]}` is not filled in"
                    : $"{name}:{line}: none of {KeyNames(keyColumns, "or")} is filled in; a row needs exactly one");
            if (filled.Length > 1)
                throw new CollectionException($"{name}:{line}: {KeyNames(filled, "and")} are {(filled.Length == 2 ? "both" : "all")} filled in; a row is keyed by exactly one of them");
            int keyColumn = filled[0];
            var value = fields[keyColumn].Trim();

            var labels = fields[labelsColumn].Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Distinct(StringComparer.Ordinal).ToArray();
            var metadata = new SortedDictionary<string, string>(StringComparer.Ordinal);
            for (int c = 0; c < header.Length; c++)
                if (c != keyColumn && (c == studyColumn || !keyColumns.Contains(c)) && c != labelsColumn && fields[c].Length > 0)
                    metadata[header[c]] = fields[c];
            var annotation = new CaseAnnotation(labels, metadata);

            if (keyColumn == studyColumn)
            {
                if (!byStudy.TryAdd(value, annotation))
                    throw new CollectionException($"{name}:{line}: a second row for {StudyPrefix}{value}");
                continue;
            }
            var key = keyColumn == pathColumn ? CaseId.FileKey(NormaliseRelativePath(value, name, line)) : CaseId.SopKey(value);
            if (!byKey.TryAdd(key, annotation))
                throw new CollectionException($"{name}:{line}: a second row for {key}");
        }
        return new LabelsFile(byKey, byStudy);
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
