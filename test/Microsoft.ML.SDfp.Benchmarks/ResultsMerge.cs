using System.Globalization;
using System.Text.Json;
using Microsoft.ML.SDfp.Numerics.Telemetry;

namespace Microsoft.ML.SDfp.Benchmarks;

/// <summary>
/// <c>fashion-mnist-merge</c>: puts the results of several <c>fashion-mnist</c> invocations into one report. On a 2-core
/// machine, two one-thread invocations side by side train about 1.3× as many images per second as one two-thread
/// invocation, which is what makes the full mode fit in a sitting; the step timing is then measured in a third, quiet
/// invocation with <c>--timing-only</c>. Invocations of several seeds give one report per seed (merged as above) and
/// the comparison across seeds (<see cref="SeedSummary"/>); an earlier merge's folder is an input like any other.
/// </summary>
internal static class ResultsMerge
{
    public const string Usage = """
        usage: Microsoft.ML.SDfp.Benchmarks fashion-mnist-merge [--plots-seed N] [--all-telemetry] --out DIR INPUT_DIR INPUT_DIR ...
          Each INPUT_DIR holds the fashion-mnist.json (and telemetry .csv.gz or .csv files) of one fashion-mnist invocation,
          or of an earlier fashion-mnist-merge (its invocations and seeds are taken over).
          They must agree on model, mode, data sizes, epochs, batch size, learning rate and recipe. They may hold different
          seeds; within one seed, their probes must have picked the same shifts, each configuration may appear once, and
          at most one may hold a step timing.
          With two or more seeds, the report adds a Seeds section: final test accuracy per seed, mean ± SD, paired
          differences (each config − FP32, S-DFP − DFP) and fashion-mnist-seeds.png. The accuracy curves and the
          telemetry plots show one seed:
          --plots-seed N        the seed they show (default: the lowest)
          --all-telemetry       also keep the telemetry of the other seeds (about 0.7 MB per quantised run), named
                                fashion-mnist-telemetry-<config>-seed<N>.csv.gz; by default only the plotted seed's is
                                kept, and the other seeds' stays in their invocations' folders
          Writes fashion-mnist.json, fashion-mnist.md, the plots and the kept telemetry (.csv.gz, see TelemetrySampling) into DIR.
        """;

    public static int Run(string[] args)
    {
        string? output = null;
        long? plotsSeed = null;
        var allTelemetry = false;
        var inputs = new List<string>();
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--out" when i + 1 < args.Length: output = args[++i]; break;
                case "--plots-seed" when i + 1 < args.Length:
                    if (!long.TryParse(args[++i], NumberStyles.Integer, CultureInfo.InvariantCulture, out var seed))
                    {
                        Console.Error.WriteLine($"--plots-seed needs an integer; got '{args[i]}'.\n{Usage}");
                        return 2;
                    }
                    plotsSeed = seed;
                    break;
                case "--all-telemetry": allTelemetry = true; break;
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
            var (report, telemetry) = Merge(inputs, command, plotsSeed, allTelemetry);
            Directory.CreateDirectory(output);
            foreach (var seedReport in report.BySeed())
            {
                foreach (var run in seedReport.Runs)
                {
                    if (run.TelemetryCsv is { } name)
                        QuantizationTelemetry.WriteCsv(Path.Combine(output, name), telemetry[seedReport.Seed][run.Config]);
                }
            }
            ResultsReport.Write(output, report, telemetry[report.Seed]);
            var seeds = report.Seeds?.Seeds ?? new[] { report.Seed };
            Console.WriteLine($"merged {report.BySeed().Sum(r => r.Runs.Count)} runs of seed{(seeds.Count == 1 ? "" : "s")} {string.Join(", ", seeds)} " +
                              $"from {inputs.Count} folders into {Path.Combine(output, "fashion-mnist.json")} and fashion-mnist.md" +
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
    /// The merged report and the kept telemetry of each run (<see cref="TelemetrySampling"/>) by seed and configuration,
    /// whose runs name the <c>.csv.gz</c> file it is to be written to (<see cref="TelemetryFile"/>).
    /// </summary>
    /// <param name="plotsSeed">The seed whose report is the top level (its curves and telemetry are plotted); null for the lowest.</param>
    /// <param name="allTelemetry">Keep every seed's telemetry; otherwise only the plotted seed's runs name a telemetry file.</param>
    internal static (ExperimentReport Report, Dictionary<long, Dictionary<string, IReadOnlyList<TensorStatistics>>> Telemetry) Merge(
        IReadOnlyList<string> inputs, string command, long? plotsSeed = null, bool allTelemetry = false)
    {
        // An earlier merge of several seeds is one part per seed; its parts keep the folder, where their telemetry is.
        var parts = inputs.SelectMany(folder => Read(folder).BySeed().Select(report => new Part(folder, report))).ToList();
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
            Same("training-set size", r => r.TrainSize);
            Same("epochs", r => r.Epochs);
            Same("batch size", r => r.BatchSize);
            Same("learning rate", r => r.LearningRate);
            Same("recipe", r => r.Schedule);
        }
        // Seeds are compared on the same test images, so the test size must agree across seeds too.
        var withRuns = parts.Where(p => p.Report.Runs.Count > 0).ToList();
        if (withRuns.Select(p => p.Report.TestSize).Distinct().Count() > 1)
            throw new InvalidDataException("Cannot merge runs evaluated on different test-set sizes: " +
                                           string.Join(", ", withRuns.Select(p => $"'{p.Folder}' (seed {p.Report.Seed}) {p.Report.TestSize}")) + ".");

        var seeds = parts.Select(p => p.Report.Seed).Distinct().Order().ToList();
        var plotted = plotsSeed ?? seeds[0];
        if (!seeds.Contains(plotted))
            throw new InvalidDataException($"--plots-seed {plotted}: the inputs hold seed{(seeds.Count == 1 ? "" : "s")} {string.Join(", ", seeds)} only.");
        var telemetry = seeds.ToDictionary(seed => seed, _ => new Dictionary<string, IReadOnlyList<TensorStatistics>>());
        var testSize = withRuns.FirstOrDefault()?.Report.TestSize;
        var perSeed = seeds.Select(seed => MergeSeed(parts.Where(p => p.Report.Seed == seed).ToList(), command, testSize, seeds[0],
            allTelemetry || seed == plotted ? telemetry[seed] : null)).ToList();
        if (perSeed.Count == 1)
            return (perSeed[0], telemetry);

        var top = perSeed.Single(r => r.Seed == plotted);
        var sources = perSeed.SelectMany(r => r.Sources).ToList();
        var merged = top with
        {
            StartedUtc = sources.Min(s => s.StartedUtc),
            FinishedUtc = sources.Max(s => s.FinishedUtc),
            Complete = perSeed.All(r => r.Complete),
            Commit = string.Join(", ", sources.Select(s => s.Commit).Distinct()),
            OtherSeeds = perSeed.Where(r => r.Seed != plotted).ToList(),
            Seeds = SeedSummary.Compute(perSeed, plotted),
        };
        return (merged, telemetry);
    }

    /// <summary>A report of one seed and the folder it was read from.</summary>
    private sealed record Part(string Folder, ExperimentReport Report);

    /// <summary>
    /// The invocations of one seed put together as one report; fills <paramref name="telemetry"/> with their runs' kept
    /// records, or, when it is null, leaves the telemetry out (the runs then name no file).
    /// </summary>
    private static ExperimentReport MergeSeed(IReadOnlyList<Part> parts, string command, int? testSize, long lowestSeed,
        Dictionary<string, IReadOnlyList<TensorStatistics>>? telemetry)
    {
        var first = parts[0];
        var seed = first.Report.Seed;
        // The probe runs in every invocation, from the seed's initial weights: within a seed the picks must agree,
        // across seeds they may differ (each seed's S-DFP runs use the shifts of its own probe).
        var probes = new SortedDictionary<int, (string Folder, ShiftProbeResult Probe)>();
        foreach (var (folder, report) in parts)
        {
            foreach (var probe in report.ShiftProbes)
            {
                if (probes.TryGetValue(probe.Bits, out var seen) && !seen.Probe.ChosenShifts.OrderBy(k => k.Key).SequenceEqual(probe.ChosenShifts.OrderBy(k => k.Key)))
                    throw new InvalidDataException($"Cannot merge '{folder}' with '{seen.Folder}': their {probe.Bits}-bit probes of seed {seed} picked different shifts, so their S-DFP runs are different experiments.");
                probes.TryAdd(probe.Bits, (folder, probe));
            }
        }

        var timings = parts.Where(p => p.Report.StepTiming is not null).ToList();
        if (timings.Count > 1)
            throw new InvalidDataException($"More than one folder holds a step timing of seed {seed} ({string.Join(", ", timings.Select(t => $"'{t.Folder}'"))}); keep one.");

        var runs = new List<RunRecord>();
        var totalSteps = TelemetrySampling.TotalSteps(first.Report.TrainSize, first.Report.BatchSize, first.Report.Epochs);
        foreach (var (folder, report) in parts)
        {
            foreach (var run in report.Runs)
            {
                if (runs.Any(r => r.Config == run.Config))
                    throw new InvalidDataException($"Configuration '{run.Config}' of seed {seed} appears in more than one folder (again in '{folder}').");
                if (run.TelemetryCsv is { } csv && telemetry is not null)
                {
                    telemetry[run.Config] = TelemetrySampling.Keep(QuantizationTelemetry.ReadCsv(Path.Combine(folder, csv)), totalSteps);
                    runs.Add(run with { TelemetryCsv = TelemetryFile(run.Config, seed, lowestSeed) });
                }
                else
                {
                    runs.Add(run with { TelemetryCsv = null });
                }
            }
        }
        var order = ExperimentOptions.AllConfigs.ToList();
        runs = runs.OrderBy(r => order.IndexOf(r.Config) is var i && i >= 0 ? i : int.MaxValue).ToList();
        var planned = parts.SelectMany(p => p.Report.PlannedConfigs).Distinct().OrderBy(c => order.IndexOf(c)).ToList();
        // A merged input lists the invocations it was put together from: take those, not the earlier merge's command.
        var sources = parts.SelectMany(p => p.Report.Sources.Count > 0 ? p.Report.Sources : new[] { SourceOf(p.Report) }).ToList();

        return new ExperimentReport(
            first.Report.Mode,
            command,
            seed,
            first.Report.TrainSize,
            testSize ?? first.Report.TestSize,
            first.Report.Epochs,
            first.Report.BatchSize,
            first.Report.LearningRate,
            first.Report.Schedule,
            first.Report.Threads,
            first.Report.Machine,
            sources.Min(s => s.StartedUtc),
            sources.Max(s => s.FinishedUtc),
            probes.Values.Select(p => p.Probe).ToList(),
            timings.SingleOrDefault()?.Report.StepTiming,
            runs)
        {
            // A killed invocation whose missing configurations another folder supplies (a resumed rerun) leaves nothing missing.
            Complete = planned.All(c => runs.Any(r => r.Config == c))
                       && parts.All(p => p.Report.Complete || p.Report.Runs.Count < p.Report.PlannedConfigs.Count),
            PlannedConfigs = planned,
            Commit = string.Join(", ", sources.Select(s => s.Commit).Distinct()),
            Sources = sources,
            Model = first.Report.Model,
        };
    }

    private static SourceRun SourceOf(ExperimentReport report) => new(report.Command, report.Commit, report.Threads, report.Runs.Select(r => r.Config).ToList(),
        report.StepTiming is not null, report.StartedUtc, report.FinishedUtc);

    /// <summary>
    /// Where a merged run's telemetry goes: <c>fashion-mnist-telemetry-&lt;config&gt;.csv.gz</c> as <c>fashion-mnist</c> names it, for the
    /// lowest seed, so that the files of a one-seed report keep their names when seeds are added; other seeds add <c>-seed&lt;N&gt;</c>.
    /// </summary>
    internal static string TelemetryFile(string config, long seed, long lowestSeed) =>
        seed == lowestSeed ? $"fashion-mnist-telemetry-{config}.csv.gz" : $"fashion-mnist-telemetry-{config}-seed{seed}.csv.gz";

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
        var bySeed = report.BySeed();
        foreach (var part in bySeed)
        {
            if (!ExperimentModel.Names.Contains(part.Model))
                throw new InvalidDataException($"'{path}': model '{part.Model}' (seed {part.Seed}) is not one of {string.Join(", ", ExperimentModel.Names)}.");
            if (part.Runs.FirstOrDefault(r => r.Seed != part.Seed) is { } stray)
                throw new InvalidDataException($"'{path}': run '{stray.Config}' has seed {stray.Seed} in the report of seed {part.Seed}.");
        }
        if (bySeed.GroupBy(r => r.Seed).FirstOrDefault(g => g.Count() > 1) is { } twice)
            throw new InvalidDataException($"'{path}': seed {twice.Key} appears more than once (field otherSeeds).");
        return report;
    }
}
