namespace Microsoft.ML.SDfp.Benchmarks;

/// <summary>Everything <c>fashion-mnist.json</c> holds: how the experiment ran, and one record per configuration.</summary>
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
    IReadOnlyList<RunRecord> Runs);

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
    string? TelemetryCsv);

/// <summary>How the hand-picked S-DFP shifts were chosen: what the auto-shift picked per role over a short probe.</summary>
internal sealed record ShiftProbeResult(
    int Bits,
    int Steps,
    IReadOnlyList<RoleProbe> Roles);

/// <summary>One role's probe outcome: the chosen shift and the evidence for it.</summary>
internal sealed record RoleProbe(
    string Role,
    int ChosenShift,
    IReadOnlyDictionary<string, int> AutoShiftHistogram,
    double MeanSaturatedFraction,
    double MeanFlushedToZeroFraction,
    double MeanSqnrDb,
    int Samples);

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
    IReadOnlyList<double> QuantizedMs);
