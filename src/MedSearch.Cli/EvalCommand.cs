using System.Globalization;
using MedSearch.Engine;
using MedSearch.Evaluation;

namespace MedSearch.Cli;

public static class EvalCommand
{
    private const string Help = $"""
        usage: medsearch eval (--split KEY=VALUE | --queries FOLDER --labels labels.csv | --leave-one-out)
                              [--k 10 | --k 1,5,10,25] [--weighting similarity|uniform|softmax] [--temperature T]
                              [--target-sensitivity S | --target-specificity S] [--save] [--exclude-same-patient]
                              [--drop-duplicates] [--age-bands 0-17,18-39,40-64,65+] [--bootstrap N] [--seed N]
                              [--level instance|series|study] [--pooling P] [--out DIR] [--data DIR]

        How well neighbour voting over this collection classifies: every labelled query is searched as the service
        searches (approximate HNSW), and again exactly, and per label the report gives the AUC with a bootstrap 95%
        interval, the ROC curve, accuracy, sensitivity, specificity, PPV and NPV at the operating point, retrieval
        precision@k and mAP — overall, by sex and by age band, with the largest gap between subgroups. Stop `serve`
        on the data directory first (it is opened for writing).

        queries (exactly one):
          --split KEY=VALUE       the collection's cases with metadata KEY=VALUE (e.g. split=test); the other cases
                                  are the reference, and queries never see each other
          --queries FOLDER        images outside the collection, labelled by --labels (labels.csv as for `index`);
                                  the whole collection is the reference
          --leave-one-out         every case in turn; it never sees itself or its own study
        options:
          --level L               instance (default), series or study: what a case is (series and studies are
                                  pooled from their DICOM slices; labels.csv may label them by study_instance_uid)
          --k LIST                neighbourhood sizes, comma-separated (default 10)
          --weighting W           similarity (default), uniform or softmax, as Classify
          --temperature T         softmax temperature (default 0.1)
          --target-sensitivity S  choose each label's threshold as the highest reaching sensitivity S (0..1)
          --target-specificity S  or the lowest reaching specificity S
          --save                  store the chosen thresholds as the collection's operating points, so Classify
                                  decides with them (needs a target and a single --k)
          --exclude-same-patient  a query never sees its own patient's cases (where it has a patient)
          --drop-duplicates       leave out queries whose pixels equal a reference case's (always reported)
          --age-bands LIST        age bands in years (default 0-17,18-39,40-64,65+)
          --bootstrap N           bootstrap resamples for the AUC interval (default 1000)
          --seed N                bootstrap seed (default 20261127), so a report reproduces exactly
          --out DIR               where the report goes (default ./eval-report): report.json, report.html,
                                  roc-LABEL-kK.csv/.png, scores.csv
          --data DIR              data directory (default: $MEDSEARCH_DATA, else ./index-data)
        {EncoderArguments.ModelAndDeviceHelp}
        {EncoderArguments.VolumeHelp}

        exit status: 0 done, 1 the collection could not be opened, 2 bad usage or nothing to evaluate
        """;

    public static Task<int> RunAsync(string[] args)
    {
        var line = CommandLine.Parse(args, new HashSet<string>
        {
            "--split", "--queries", "--labels", "--k", "--weighting", "--temperature", "--target-sensitivity", "--target-specificity",
            "--age-bands", "--bootstrap", "--seed", "--out", "--data", "--level", EncoderArguments.Model, EncoderArguments.Device, EncoderArguments.Pooling, EncoderArguments.SeriesSlices,
        }, new HashSet<string> { "--leave-one-out", "--save", "--exclude-same-patient", "--drop-duplicates" });
        if (line.Help) { Console.Out.Write(Help); return Task.FromResult(Program.Ok); }
        if (line.Positional.Count != 0) throw new UsageException($"takes no positional arguments, got `{line.Positional[0]}`");

        var options = new EvaluationOptions
        {
            Queries = QueriesOf(line),
            Ks = KsOf(line.Get("--k") ?? "10"),
            Weighting = line.Get("--weighting") switch
            {
                null or "similarity" => Weighting.Similarity,
                "uniform" => Weighting.Uniform,
                "softmax" => Weighting.Softmax,
                var other => throw new UsageException($"--weighting must be similarity, uniform or softmax, got `{other}`"),
            },
            Temperature = Number(line, "--temperature") ?? 0.1,
            Target = TargetOf(line),
            ExcludeSamePatient = line.Has("--exclude-same-patient"),
            DropDuplicates = line.Has("--drop-duplicates"),
            AgeBands = AgeBandsOf(line.Get("--age-bands")),
            BootstrapSamples = line.GetInt("--bootstrap", 1000),
            Seed = line.GetInt("--seed", 20261127),
            Level = line.Get("--level") switch
            {
                null or "instance" => VolumeLevel.Instance,
                "series" => VolumeLevel.Series,
                "study" => VolumeLevel.Study,
                var other => throw new UsageException($"--level must be instance, series or study, got `{other}`"),
            },
        };
        if (options.Temperature is not > 0) throw new UsageException($"--temperature must be above 0, got {options.Temperature}");
        if (options.BootstrapSamples is < 1 or > 100_000) throw new UsageException($"--bootstrap must be between 1 and 100000, got {options.BootstrapSamples}");
        bool save = line.Has("--save");
        if (save && (options.Target is null || options.Ks.Count != 1))
            throw new UsageException("--save needs --target-sensitivity or --target-specificity and exactly one --k: a threshold is only valid for the k it was chosen at");
        // Stored points are per label, and Classify applies them to instance queries: series votes would overwrite them.
        if (save && options.Level != VolumeLevel.Instance)
            throw new UsageException("--save stores instance-level operating points; a threshold chosen on series or study votes would replace them. Evaluate without --save at this level");
        var output = Path.GetFullPath(line.Get("--out") ?? "eval-report");

        var dataPath = DataDirectory.Resolve(line.Get("--data"));
        using var collection = Collection.Open(dataPath, EncoderArguments.Options(line), message => Console.Out.WriteLine(message));
        using var ctrlC = new CtrlC();
        EvaluationResult evaluation;
        try
        {
            evaluation = Evaluator.Run(collection, options, new ProgressDisplay(Console.Error, !Console.IsErrorRedirected), ctrlC.Token);
        }
        catch (ArgumentException e)
        {
            throw new UsageException(e.Message);
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine("medsearch eval: stopped; no report written");
            return Task.FromResult(Program.Failure);
        }
        Console.Error.WriteLine();

        TerminalTable.Write(evaluation.Report, Console.Out);
        var written = ReportWriter.WriteAll(evaluation.Report, output).ToList();
        var scores = Path.Combine(output, EvaluationResult.ScoresFile);
        evaluation.WriteScores(scores);
        written.Add(scores);
        Console.Out.WriteLine($"report: {Path.Combine(output, "report.html")} ({written.Count} files in {output})");

        if (save)
        {
            var points = evaluation.ChosenPoints(options.Ks[0]);
            if (points.Count == 0)
                Console.Out.WriteLine("no operating point saved: no label had both positive and negative queries");
            else
            {
                OperatingPoints.Save(collection.DataPath, points);
                foreach (var (label, point) in points)
                    Console.Out.WriteLine($"saved operating point of {label}: threshold {point.Threshold:0.####} ({point.Name}; expected sensitivity " +
                        $"{Rate(point.ExpectedSensitivity)}, specificity {Rate(point.ExpectedSpecificity)})");
                Console.Out.WriteLine($"in {Path.Combine(collection.DataPath, OperatingPoints.FileName)}; a running server reads it when it starts");
            }
        }
        return Task.FromResult(Program.Ok);
    }

    private static string Rate(double? rate) => rate is { } r ? r.ToString("0.###", CultureInfo.InvariantCulture) : "n/a";

    private static QuerySet QueriesOf(CommandLine line)
    {
        var given = new[] { "--split", "--queries", "--leave-one-out" }.Where(line.Has).ToList();
        if (given.Count != 1) throw new UsageException("give exactly one of --split KEY=VALUE, --queries FOLDER (with --labels) or --leave-one-out");
        if (line.Has("--labels") != line.Has("--queries")) throw new UsageException("--queries and --labels go together");
        switch (given[0])
        {
            case "--split":
                var split = line.Get("--split")!;
                int eq = split.IndexOf('=');
                if (eq <= 0 || eq == split.Length - 1) throw new UsageException($"--split must be KEY=VALUE (e.g. split=test), got `{split}`");
                return new QuerySet.Split(split[..eq].Trim(), split[(eq + 1)..].Trim());
            case "--queries":
                return new QuerySet.Folder(line.Get("--queries")!, line.Get("--labels")!);
            default:
                return new QuerySet.LeaveOneOut();
        }
    }

    private static List<int> KsOf(string text)
    {
        var ks = new List<int>();
        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries))
            ks.Add(int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out var k) && k > 0
                ? k : throw new UsageException($"--k must be positive whole numbers separated by commas, got `{part}`"));
        return ks;
    }

    private static OperatingTarget? TargetOf(CommandLine line)
    {
        var sensitivity = Number(line, "--target-sensitivity");
        var specificity = Number(line, "--target-specificity");
        if (sensitivity is not null && specificity is not null) throw new UsageException("give --target-sensitivity or --target-specificity, not both");
        var (measure, value, name) = sensitivity is { } s ? (OperatingMeasure.Sensitivity, s, "--target-sensitivity")
            : specificity is { } p ? (OperatingMeasure.Specificity, p, "--target-specificity")
            : default;
        if (name is null) return null;
        if (value is not (> 0 and <= 1)) throw new UsageException($"{name} must be above 0 and at most 1, got {value}");
        return new OperatingTarget(measure, value);
    }

    private static IReadOnlyList<AgeBand> AgeBandsOf(string? text)
    {
        if (text is null) return Subgroups.DefaultAgeBands;
        try
        {
            var bands = Subgroups.ParseAgeBands(text);
            _ = new Subgroups(bands);
            return bands;
        }
        catch (ArgumentException e)
        {
            throw new UsageException($"--age-bands: {e.Message}");
        }
    }

    private static double? Number(CommandLine line, string name)
    {
        var text = line.Get(name);
        if (text is null) return null;
        return double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && double.IsFinite(value)
            ? value : throw new UsageException($"{name} must be a number, got `{text}`");
    }
}
