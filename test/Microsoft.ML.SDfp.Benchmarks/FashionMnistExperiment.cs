using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Microsoft.ML.SDfp.Numerics.Formats;
using Microsoft.ML.SDfp.Numerics.Telemetry;
using Microsoft.ML.SDfp.Runtime;
using Microsoft.ML.SDfp.Training;
using Microsoft.ML.SDfp.Training.Data;
using TorchSharp;

namespace Microsoft.ML.SDfp.Benchmarks;

/// <summary>
/// The paper's comparison on Fashion-MNIST: a CIFAR-style ResNet (<see cref="ExperimentModel"/>: ResNet-20 by default,
/// 1 input channel, 28×28) trained with one seed and one schedule as FP32, DFP8, S-DFP8 (probe-picked shifts), auto-shift
/// 8-bit, DFP6 and S-DFP6. Writes <c>fashion-mnist.json</c>, <c>fashion-mnist.md</c>, per-run telemetry (<c>.csv.gz</c>,
/// kept as <see cref="TelemetrySampling"/> says) and PNG plots. Several seeds are compared by running it once per seed
/// and putting the folders together with <see cref="ResultsMerge"/>.
/// </summary>
internal static class FashionMnistExperiment
{
    public static int Run(string[] args)
    {
        ExperimentOptions options;
        try
        {
            options = ExperimentOptions.Parse(args);
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine(e.Message);
            Console.Error.WriteLine(ExperimentOptions.Usage);
            return 2;
        }
        if (options.Help)
        {
            Console.WriteLine(ExperimentOptions.Usage);
            return 0;
        }

        TorchSharpRuntime.EnsureLoaded();
        if (options.RetainMemory && !Runtime.NativeMemoryTuning.RetainFreedMemory())
            Log("note: --retain-memory has no effect here (not glibc on Linux)");
        torch.set_num_threads(options.Threads);
        var started = DateTime.UtcNow;
        var command = "dotnet run -c Release --project test/Microsoft.ML.SDfp.Benchmarks -- fashion-mnist " + string.Join(' ', args);
        Log($"fashion-mnist, {options.Mode} mode, {ExperimentModel.DisplayName(options.Model)}: {options.TrainSize} training images, {options.Epochs} epochs, augmentation {(options.Augmentation ? "on" : "off")}, seed {options.Seed}, {options.Threads} threads, {(options.RetainMemory ? "freed memory retained" : "default allocator")}, commit {GitCommit.Value}");

        using var train = FashionMnist.LoadTrain(options.DataDirectory, options.TrainSize);
        using var test = FashionMnist.LoadTest(options.DataDirectory, options.TestSize);
        Log($"loaded {train.Count} training and {test.Count} test images");

        var trainingOptions = new TrainingOptions
        {
            Epochs = options.Epochs,
            BatchSize = options.BatchSize,
            LearningRate = options.LearningRate,
            Schedule = LearningRateSchedule.Cosine,
            Momentum = 0.9,
            WeightDecay = 5e-4,
            RandomCrop = options.Augmentation,
            CropPadding = 2,
            // Fashion-MNIST's background is black; padding with normalised black keeps the border like the image edge.
            CropPaddingValue = -FashionMnist.Mean / FashionMnist.Std,
            HorizontalFlip = options.Augmentation,
            Seed = options.Seed,
        };

        // 1. The hand-picked S-DFP shifts, from a short auto-shift probe per bit width.
        var probes = new List<ShiftProbeResult>();
        var shifts = new Dictionary<int, (int W, int A, int G)>();
        var needed = new SortedSet<int>(options.Configs.Select(ExperimentConfig.ProbedBits).OfType<int>());
        if (options.TimingRounds > 0)
            needed.Add(8); // the step timing's S-DFP8
        foreach (var bits in needed)
        {
            Log($"shift probe: {options.ProbeSteps} steps of S-DFP{bits}(s) for s = 0..{ShiftProbe.MaxShift}");
            var probe = ShiftProbe.Run(bits, options.Model, train, trainingOptions, options.ProbeSteps, options.SaturationBudget, options.Seed, Log);
            probes.Add(probe);
            shifts[bits] = (probe.ChosenShifts["Weight"], probe.ChosenShifts["Activation"], probe.ChosenShifts["Error"]);
        }

        // 2. The training runs, one after another with the same seed and schedule.
        var runs = new List<RunRecord>();
        var telemetryByConfig = new Dictionary<string, IReadOnlyList<TensorStatistics>>();
        foreach (var name in options.Configs)
        {
            var config = ExperimentConfig.Create(name, options.Seed, shifts);
            var (record, records) = TrainOne(config, train, test, trainingOptions, options);
            runs.Add(record);
            if (records is not null)
                telemetryByConfig[name] = records;
            WriteReport(options, command, started, probes, null, runs, telemetryByConfig, complete: false);
        }

        // 3. S-DFP8 / FP32 step time, measured interleaved in this process.
        StepTimingResult? timing = null;
        if (options.TimingRounds > 0)
        {
            var sdfp8 = ExperimentConfig.Create("sdfp8", options.Seed, shifts);
            Log($"step timing: {options.TimingRounds} interleaved FP32 / S-DFP8 steps at batch {options.BatchSize}, {options.Threads} threads");
            timing = StepTiming.Measure(sdfp8, options.Model, train, options.BatchSize, options.TimingRounds, options.Seed, options.Threads) with { RetainedFreedMemory = options.RetainMemory };
            Log($"  FP32 {timing.Fp32MedianMs:F0} ms/step, S-DFP8 {timing.QuantizedMedianMs:F0} ms/step, ratio {timing.Ratio:F2}");
        }

        WriteReport(options, command, started, probes, timing, runs, telemetryByConfig, complete: true);
        Log($"wrote {Path.Combine(options.OutputDirectory, "fashion-mnist.json")} and fashion-mnist.md");
        return runs.All(r => r.Status == "completed") ? 0 : 1;
    }

    private static (RunRecord Record, IReadOnlyList<TensorStatistics>? Telemetry) TrainOne(
        ExperimentConfig config, ImageDataset train, ImageDataset test, TrainingOptions trainingOptions, ExperimentOptions options)
    {
        Log($"[{config.Name}] {config.Describe()}");
        torch.manual_seed(options.Seed);
        using var model = ExperimentModel.Create(options.Model, config.Policy);
        var stepsPerEpoch = (int)Math.Ceiling(train.Count / (double)options.BatchSize);
        QuantizationTelemetry? telemetry = null;
        if (!config.Policy.Layers.IsFp32)
        {
            // About 60 full-statistics samples over the run: enough for the curves, cheap enough not to slow training.
            telemetry = new QuantizationTelemetry { SampleEvery = Math.Max(1, stepsPerEpoch * options.Epochs / 60) };
            model.Telemetry = telemetry;
        }

        string? checkpoint = options.CheckpointDirectory is null ? null : Directory.CreateDirectory(Path.Combine(options.CheckpointDirectory, config.Name)).FullName;
        var trainer = new ImageClassifierTrainer(model, trainingOptions with { CheckpointDirectory = checkpoint });
        var progress = new ConsoleProgress(config.Name, options.Epochs);
        trainer.StepCompleted += progress.OnStep;
        trainer.EpochCompleted += progress.OnEpoch;
        var clock = Stopwatch.StartNew();
        string status = "completed";
        TrainingResult? result = null;
        try
        {
            result = trainer.Fit(train, test);
        }
        catch (TrainingDivergedException e)
        {
            status = "diverged: " + e.Message;
            Log($"[{config.Name}] {status}");
        }
        clock.Stop();

        var epochs = result?.Epochs ?? progress.Epochs;
        string? csv = null;
        List<TensorStatistics>? records = null;
        if (telemetry is not null)
        {
            // The report is drawn from the kept records, so that fashion-mnist-merge redraws the same plots from the file.
            records = TelemetrySampling.Keep(telemetry.Records, (long)stepsPerEpoch * options.Epochs);
            csv = $"fashion-mnist-telemetry-{config.Name}.csv.gz";
            QuantizationTelemetry.WriteCsv(Path.Combine(options.OutputDirectory, csv), records);
        }
        var layers = config.Policy.Layers;
        var record = new RunRecord(
            config.Name,
            config.Describe(),
            DfpFormat.NameOf(layers.Weight),
            DfpFormat.NameOf(layers.Activation),
            DfpFormat.NameOf(layers.Error),
            "FP32",
            options.Epochs,
            epochs.Count,
            (int)train.Count,
            (int)test.Count,
            options.Seed,
            epochs.Select(e => e.ValidationAccuracy ?? double.NaN).ToList(),
            epochs.Select(e => e.ValidationLoss ?? double.NaN).ToList(),
            epochs.Select(e => e.TrainLoss).ToList(),
            epochs.Select(e => e.TrainAccuracy).ToList(),
            epochs.Count > 0 ? epochs[^1].ValidationAccuracy : null,
            clock.Elapsed.TotalSeconds,
            epochs.Count > 0 ? epochs.Sum(e => e.ImagesPerSecond * e.TrainingTime.TotalSeconds) / Math.Max(1e-9, epochs.Sum(e => e.TrainingTime.TotalSeconds)) : double.NaN,
            epochs.Count > 0 ? epochs[0].ResidentBytes / 1048576.0 : null,
            epochs.Count > 0 ? epochs[^1].ResidentBytes / 1048576.0 : null,
            status,
            csv)
        {
            ResumedAfterEpoch = epochs.Count > progress.Epochs.Count ? epochs.Count - progress.Epochs.Count : null,
        };
        model.Telemetry = null;
        return (record, records);
    }

    private static void WriteReport(ExperimentOptions options, string command, DateTime started, IReadOnlyList<ShiftProbeResult> probes,
        StepTimingResult? timing, IReadOnlyList<RunRecord> runs, IReadOnlyDictionary<string, IReadOnlyList<TensorStatistics>> telemetry, bool complete)
    {
        var report = new ExperimentReport(
            options.Mode,
            command,
            options.Seed,
            options.TrainSize,
            runs.FirstOrDefault()?.TestSize ?? options.TestSize ?? 10_000,
            options.Epochs,
            options.BatchSize,
            options.LearningRate,
            "SGD momentum 0.9, weight decay 5e-4, cosine per step, no warm-up; " + (options.Augmentation ? "random crop (pad 2) + horizontal flip" : "no augmentation"),
            options.Threads,
            $"{Environment.ProcessorCount} logical cores, {RuntimeInformation.OSDescription}, {RuntimeInformation.FrameworkDescription}",
            started,
            DateTime.UtcNow,
            probes,
            timing,
            runs)
        {
            Complete = complete,
            PlannedConfigs = options.Configs,
            Commit = GitCommit.Value,
            Model = options.Model,
        };
        ResultsReport.Write(options.OutputDirectory, report, telemetry);
    }

    private static readonly Lazy<string> GitCommit = new(() =>
    {
        var head = Git("rev-parse HEAD");
        if (head is null)
            return "unknown";
        // Untracked files (e.g. the results being written) do not count; modified tracked files do.
        var dirty = Git("status --porcelain --untracked-files=no");
        return string.IsNullOrWhiteSpace(dirty) ? head : head + "+dirty";
    });

    private static string? Git(string arguments)
    {
        try
        {
            using var process = Process.Start(new ProcessStartInfo("git", arguments) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false });
            if (process is null)
                return null;
            var output = process.StandardOutput.ReadToEnd().Trim();
            process.WaitForExit();
            return process.ExitCode == 0 ? output : null;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return null;
        }
    }

    internal static void Log(string message) =>
        Console.WriteLine($"{DateTime.UtcNow.ToString("HH:mm:ss", CultureInfo.InvariantCulture)} {message}");
}
