using System.Text.Json;
using Microsoft.ML.SDfp.Numerics.Telemetry;

namespace Microsoft.ML.SDfp.Benchmarks;

/// <summary>
/// <c>fashion-mnist-merge</c>: puts the results of several <c>fashion-mnist</c> invocations of the same experiment into
/// one report. On a 2-core machine, two one-thread invocations side by side train about 1.3× as many images per second
/// as one two-thread invocation, which is what makes the full mode fit in a sitting; the step timing is then measured
/// in a third, quiet invocation with <c>--timing-only</c>.
/// </summary>
internal static class ResultsMerge
{
    public const string Usage = """
        usage: Microsoft.ML.SDfp.Benchmarks fashion-mnist-merge --out DIR INPUT_DIR INPUT_DIR ...
          Each INPUT_DIR holds the fashion-mnist.json (and telemetry .csv.gz or .csv files) of one fashion-mnist invocation.
          They must agree on model, mode, data sizes, seed, epochs, batch size, learning rate and recipe, and on the shifts
          their probes picked; each configuration may appear once, and at most one may hold a step timing.
          Writes fashion-mnist.json, fashion-mnist.md, the plots and the kept telemetry (.csv.gz, see TelemetrySampling) into DIR.
        """;

    public static int Run(string[] args)
    {
        string? output = null;
        var inputs = new List<string>();
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--out" when i + 1 < args.Length: output = args[++i]; break;
                case "--help" or "-h": Console.WriteLine(Usage); return 0;
                default:
                    if (args[i].StartsWith("--", StringComparison.Ordinal))
                    {
                        Console.Error.WriteLine($"Unknown option '{args[i]}'.\n{Usage}");
                        return 2;
                    }
                    inputs.Add(args[i]);
                    break;
            }
        }
        if (output is null || inputs.Count == 0)
        {
            Console.Error.WriteLine(Usage);
            return 2;
        }

        try
        {
            var command = "dotnet run -c Release --project test/Microsoft.ML.SDfp.Benchmarks -- fashion-mnist-merge " + string.Join(' ', args);
            var (report, telemetry) = Merge(inputs, command);
            Directory.CreateDirectory(output);
            foreach (var run in report.Runs)
            {
                if (run.TelemetryCsv is { } name)
                    QuantizationTelemetry.WriteCsv(Path.Combine(output, name), telemetry[run.Config]);
            }
            ResultsReport.Write(output, report, telemetry);
            Console.WriteLine($"merged {report.Runs.Count} runs from {inputs.Count} folders into {Path.Combine(output, "fashion-mnist.json")} and fashion-mnist.md" +
                              (report.Complete ? "" : " (INCOMPLETE: see the file)"));
            return 0;
        }
        catch (InvalidDataException e)
        {
            Console.Error.WriteLine(e.Message);
            return 1;
        }
    }

    /// <summary>
    /// The merged report and the kept telemetry of each run (<see cref="TelemetrySampling"/>), whose runs name the
    /// <c>.csv.gz</c> file it is to be written to (inputs from before telemetry was compressed name a <c>.csv</c>).
    /// </summary>
    internal static (ExperimentReport Report, Dictionary<string, IReadOnlyList<TensorStatistics>> Telemetry) Merge(
        IReadOnlyList<string> inputs, string command)
    {
        var parts = inputs.Select(folder => (Folder: folder, Report: Read(folder))).ToList();
        var first = parts[0];
        foreach (var (folder, report) in parts.Skip(1))
        {
            void Same<T>(string what, Func<ExperimentReport, T> field)
            {
                if (!EqualityComparer<T>.Default.Equals(field(report), field(first.Report)))
                    throw new InvalidDataException($"Cannot merge '{folder}' with '{first.Folder}': {what} differs ({field(report)} vs {field(first.Report)}).");
            }
            Same("model", r => r.Model);
            Same("mode", r => r.Mode);
            Same("seed", r => r.Seed);
            Same("training-set size", r => r.TrainSize);
            Same("epochs", r => r.Epochs);
            Same("batch size", r => r.BatchSize);
            Same("learning rate", r => r.LearningRate);
            Same("recipe", r => r.Schedule);
        }
        var withRuns = parts.Where(p => p.Report.Runs.Count > 0).ToList();
        if (withRuns.Select(p => p.Report.TestSize).Distinct().Count() > 1)
            throw new InvalidDataException("Cannot merge runs evaluated on different test-set sizes: " +
                                           string.Join(", ", withRuns.Select(p => $"'{p.Folder}' {p.Report.TestSize}")) + ".");

        var probes = new SortedDictionary<int, ShiftProbeResult>();
        foreach (var (folder, report) in parts)
        {
            foreach (var probe in report.ShiftProbes)
            {
                if (probes.TryGetValue(probe.Bits, out var seen) && !seen.ChosenShifts.OrderBy(k => k.Key).SequenceEqual(probe.ChosenShifts.OrderBy(k => k.Key)))
                    throw new InvalidDataException($"Cannot merge '{folder}': its {probe.Bits}-bit probe picked other shifts than an earlier folder's, so its S-DFP runs are a different experiment.");
                probes.TryAdd(probe.Bits, probe);
            }
        }

        var timings = parts.Where(p => p.Report.StepTiming is not null).ToList();
        if (timings.Count > 1)
            throw new InvalidDataException($"More than one folder holds a step timing ({string.Join(", ", timings.Select(t => $"'{t.Folder}'"))}); keep one.");

        var runs = new List<RunRecord>();
        var telemetry = new Dictionary<string, IReadOnlyList<TensorStatistics>>();
        var totalSteps = TelemetrySampling.TotalSteps(first.Report.TrainSize, first.Report.BatchSize, first.Report.Epochs);
        foreach (var (folder, report) in parts)
        {
            foreach (var run in report.Runs)
            {
                if (runs.Any(r => r.Config == run.Config))
                    throw new InvalidDataException($"Configuration '{run.Config}' appears in more than one folder (again in '{folder}').");
                if (run.TelemetryCsv is { } csv)
                {
                    telemetry[run.Config] = TelemetrySampling.Keep(QuantizationTelemetry.ReadCsv(Path.Combine(folder, csv)), totalSteps);
                    runs.Add(csv.EndsWith(".gz", StringComparison.OrdinalIgnoreCase) ? run : run with { TelemetryCsv = csv + ".gz" });
                }
                else
                {
                    runs.Add(run);
                }
            }
        }
        var order = ExperimentOptions.AllConfigs.ToList();
        runs = runs.OrderBy(r => order.IndexOf(r.Config) is var i && i >= 0 ? i : int.MaxValue).ToList();
        var planned = parts.SelectMany(p => p.Report.PlannedConfigs).Distinct().OrderBy(c => order.IndexOf(c)).ToList();

        var merged = new ExperimentReport(
            first.Report.Mode,
            command,
            first.Report.Seed,
            first.Report.TrainSize,
            withRuns.FirstOrDefault().Report?.TestSize ?? first.Report.TestSize,
            first.Report.Epochs,
            first.Report.BatchSize,
            first.Report.LearningRate,
            first.Report.Schedule,
            first.Report.Threads,
            first.Report.Machine,
            parts.Min(p => p.Report.StartedUtc),
            parts.Max(p => p.Report.FinishedUtc),
            probes.Values.ToList(),
            timings.SingleOrDefault().Report?.StepTiming,
            runs)
        {
            Complete = parts.All(p => p.Report.Complete) && planned.All(c => runs.Any(r => r.Config == c)),
            PlannedConfigs = planned,
            Commit = string.Join(", ", parts.Select(p => p.Report.Commit).Distinct()),
            Sources = parts.Select(p => new SourceRun(p.Report.Command, p.Report.Commit, p.Report.Threads, p.Report.Runs.Select(r => r.Config).ToList(),
                p.Report.StepTiming is not null, p.Report.StartedUtc, p.Report.FinishedUtc)).ToList(),
            Model = first.Report.Model,
        };
        return (merged, telemetry);
    }

    private static ExperimentReport Read(string folder)
    {
        var path = Path.Combine(folder, "fashion-mnist.json");
        if (!File.Exists(path))
            throw new InvalidDataException($"'{path}' does not exist: point fashion-mnist-merge at folders written by fashion-mnist --out.");
        ExperimentReport report;
        try
        {
            report = JsonSerializer.Deserialize<ExperimentReport>(File.ReadAllText(path), ResultsReport.Json)
                     ?? throw new InvalidDataException($"'{path}' holds no report.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"'{path}' is not a fashion-mnist results file: {e.Message}", e);
        }
        if (!ExperimentModel.Names.Contains(report.Model))
            throw new InvalidDataException($"'{path}': model '{report.Model}' is not one of {string.Join(", ", ExperimentModel.Names)}.");
        return report;
    }
}
