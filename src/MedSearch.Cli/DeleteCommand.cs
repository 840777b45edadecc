using MedSearch.Engine;

namespace MedSearch.Cli;

public static class DeleteCommand
{
    private const string Help = $"""
        usage: medsearch delete (--case ID | --series UID | --study UID | --patient-id ID | --patient-hash HASH) [--data DIR] [--model M]

        Deletes a case, or every case of a series, study or patient, from the data directory (stop `serve` on it
        first, or use the gRPC CaseService.Delete of the running server). When it returns, the cases are out of the
        store's and the index's files: a checkpoint with log compaction has run. Re-indexing a deleted case later
        stores it again as new.

        selectors (exactly one):
          --case ID           a case id (16 hex digits), case key (file:..., sop:...) or SOP Instance UID
          --series UID        every case of a Series Instance UID
          --study UID         every case of a Study Instance UID
          --patient-id ID     every case of a patient; the ID is hashed with the collection's key, never stored
          --patient-hash H    every case whose metadata patient_hash is H
        options:
          --data DIR          data directory (default: $MEDSEARCH_DATA, else ./index-data)
        {EncoderArguments.ModelAndDeviceHelp}

        exit status: 0 deleted (or nothing matched: says so), 1 the collection could not be opened, 2 bad usage
        """;

    private static readonly (string Option, DeleteScope Scope)[] Selectors =
    [
        ("--case", DeleteScope.Case), ("--series", DeleteScope.Series), ("--study", DeleteScope.Study),
        ("--patient-id", DeleteScope.Patient), ("--patient-hash", DeleteScope.PatientHash),
    ];

    public static Task<int> RunAsync(string[] args)
    {
        var line = CommandLine.Parse(args, Selectors.Select(s => s.Option).Concat(["--data", EncoderArguments.Model, EncoderArguments.Device]).ToHashSet(),
            new HashSet<string>());
        if (line.Help) { Console.Out.Write(Help); return Task.FromResult(Program.Ok); }
        if (line.Positional.Count != 0) throw new UsageException($"takes no positional arguments, got `{line.Positional[0]}`");
        var chosen = Selectors.Where(s => line.Has(s.Option)).ToList();
        if (chosen.Count != 1) throw new UsageException("give exactly one of --case, --series, --study, --patient-id, --patient-hash");
        var (option, scope) = chosen[0];
        var value = line.Get(option)!.Trim();
        if (value.Length == 0) throw new UsageException($"{option} is empty");

        var dataPath = DataDirectory.Resolve(line.Get("--data"));
        // The collection opens only with the model it was built with, so a custom model must be named here too.
        using var collection = Collection.Open(dataPath, EncoderArguments.Options(line), message => Console.Out.WriteLine(message));
        var deleted = collection.Delete(scope, value);
        // The Patient ID itself is never echoed: logs and terminals are not where identifiers belong.
        var what = scope == DeleteScope.Patient ? "--patient-id (hashed)" : $"{option} {value}";
        if (deleted.Count == 0)
            Console.Out.WriteLine($"no case matches {what}; nothing deleted");
        else
        {
            Console.Out.WriteLine($"deleted {deleted.Count} case(s) matching {what}; {collection.Count:N0} cases remain");
            foreach (var key in deleted) Console.Out.WriteLine($"  {key}");
        }
        return Task.FromResult(Program.Ok);
    }
}
