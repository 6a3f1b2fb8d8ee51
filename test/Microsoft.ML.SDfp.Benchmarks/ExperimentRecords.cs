using System.Text.Json.Serialization;

namespace Microsoft.ML.SDfp.Benchmarks;

/// <summary>
/// Everything <c>fashion-mnist.json</c> holds: how the experiment ran, and one record per configuration. A report of one
/// seed is this object alone. A report of several seeds (written by <c>fashion-mnist-merge</c>) is the report of the seed
/// its curves and telemetry plots show (<see cref="SeedSummary.PlottedSeed"/>), with the other seeds' reports in
/// <see cref="OtherSeeds"/> and the comparison across seeds in <see cref="Seeds"/>; its <see cref="Command"/>,
/// <see cref="Commit"/>, <see cref="StartedUtc"/>, <see cref="FinishedUtc"/> and <see cref="Complete"/> then cover all seeds.
/// </summary>
internal sealed record ExperimentReport(
    string Mode,
    string Command,
    long Seed,
    int TrainSize,
    int TestSize,
    int Epochs,
    int BatchSize,
    double LearningRate,
    string Schedule,
    int Threads,
    string Machine,
    DateTime StartedUtc,
    DateTime FinishedUtc,
    IReadOnlyList<ShiftProbeResult> ShiftProbes,
    StepTimingResult? StepTiming,
    IReadOnlyList<RunRecord> Runs)
{
    /// <summary>False while the experiment is still running (or when it was interrupted): the files then hold the finished runs only.</summary>
    public bool Complete { get; init; }

    /// <summary>Git commit the experiment was built from (<c>git rev-parse HEAD</c> in the working directory), with "+dirty" when files were modified.</summary>
    public string Commit { get; init; } = "unknown";

    /// <summary>Configurations asked for on the command line.</summary>
    public IReadOnlyList<string> PlannedConfigs { get; init; } = Array.Empty<string>();

    /// <summary>Set by <c>fashion-mnist-merge</c>: the runs this report was put together from. Empty for a single run.</summary>
    public IReadOnlyList<SourceRun> Sources { get; init; } = Array.Empty<SourceRun>();

    /// <summary>The network, one of <see cref="ExperimentModel.Names"/>. Reports from before <c>--model</c> have none and read as ResNet-20.</summary>
    public string Model { get; init; } = ExperimentModel.Default;

    /// <summary>In a report of several seeds, the reports of the seeds other than <see cref="Seed"/>, lowest first; absent otherwise.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyList<ExperimentReport>? OtherSeeds { get; init; }

    /// <summary>In a report of several seeds, the final accuracies across seeds and the paired differences; absent otherwise.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public SeedSummary? Seeds { get; init; }

    /// <summary>The report of each seed, lowest seed first: this one alone, or this one and <see cref="OtherSeeds"/>.</summary>
    public IReadOnlyList<ExperimentReport> BySeed() =>
        OtherSeeds is null ? new[] { this } : OtherSeeds.Prepend(this with { OtherSeeds = null, Seeds = null }).OrderBy(r => r.Seed).ToList();
}

/// <summary>One invocation whose results a merged report holds.</summary>
internal sealed record SourceRun(string Command, string Commit, int Threads, IReadOnlyList<string> Configs, bool StepTiming, DateTime StartedUtc, DateTime FinishedUtc);

/// <summary>One training run of one configuration.</summary>
internal sealed record RunRecord(
    string Config,
    string Description,
    string WeightFormat,
    string ActivationFormat,
    string ErrorFormat,
    string FirstConvAndClassifier,
    int EpochsPlanned,
    int EpochsCompleted,
    int TrainSize,
    int TestSize,
    long Seed,
    IReadOnlyList<double> TestAccuracyPerEpoch,
    IReadOnlyList<double> TestLossPerEpoch,
    IReadOnlyList<double> TrainLossPerEpoch,
    IReadOnlyList<double> TrainAccuracyPerEpoch,
    double? FinalTestAccuracy,
    double WallTimeSeconds,
    double TrainImagesPerSecond,
    double? RssEpoch1MiB,
    double? RssEpochNMiB,
    string Status,
    string? TelemetryCsv)
{
    /// <summary>
    /// The epochs a checkpoint held when this run was resumed (<c>--checkpoint</c>), absent for a run trained in one go.
    /// Those epochs' accuracies come from the checkpoint; the wall time and the telemetry cover only what ran after it.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public int? ResumedAfterEpoch { get; init; }
}

/// <summary>How the hand-picked S-DFP shifts were chosen: per candidate shift, what each role's tensors did.</summary>
internal sealed record ShiftProbeResult(
    int Bits,
    int Steps,
    double SaturationBudget,
    IReadOnlyList<ShiftCandidate> Candidates,
    IReadOnlyDictionary<string, int> ChosenShifts);

/// <summary>One candidate shift of the probe (the same shift on W, A and G).</summary>
internal sealed record ShiftCandidate(int Shift, IReadOnlyList<RoleStatistics> Roles, string? Failure);

/// <summary>Means over the probe's steps and layers for one role.</summary>
internal sealed record RoleStatistics(string Role, double MeanSaturatedFraction, double MeanFlushedToZeroFraction, double MeanSqnrDb, int Samples);

/// <summary>FP32 against S-DFP8 training-step time, measured interleaved in the same process.</summary>
internal sealed record StepTimingResult(
    string Quantized,
    int BatchSize,
    int ImageSize,
    int Threads,
    int Rounds,
    double Fp32MedianMs,
    double QuantizedMedianMs,
    double Ratio,
    IReadOnlyList<double> Fp32Ms,
    IReadOnlyList<double> QuantizedMs)
{
    /// <summary>True when the process ran with <c>NativeMemoryTuning.RetainFreedMemory()</c> (<c>--retain-memory</c>).</summary>
    public bool RetainedFreedMemory { get; init; }
}
