using System.Globalization;
using Microsoft.ML.SDfp.Training.Models;

namespace Microsoft.ML.SDfp.Benchmarks;

/// <summary>Options of the <c>step</c> benchmark; the same list is handed to every measuring process.</summary>
internal sealed record StepOptions
{
    public const string Usage = """
        usage: Microsoft.ML.SDfp.Benchmarks step [options]
          --processes N       separate measuring processes, one after another (default 3)
          --rounds N          timed rounds per process; a round runs one step of every arm (default 15)
          --warmup N          untimed rounds first (default 3)
          --threads N         torch intra-op threads (default 2)
          --batch-size N      images per step (default 128)
          --configs a,b       quantised arms beside FP32: sdfp8, auto8, dfp8 (default sdfp8)
          --variants a,b      add arms of the first config, interleaved with the others: two-pass (amax scan, then
                              quantise: the path before the one-pass guess), share (every quantising pass split
                              over 2 threads)
          --contend           run a CPU-bound competing process during the measurements
          --default-allocator do not call NativeMemoryTuning.RetainFreedMemory() (the trainer does)
          --no-end-step       do not call QuantizedBackward.EndStep() after each step (the trainer does)
          --seed N            model and rounding seed (default 1)
          --data DIR          Fashion-MNIST folder (default /usr/share/datasets/fashion-mnist)
        """;

    private static readonly string[] KnownConfigs = ["sdfp8", "auto8", "dfp8"];
    private static readonly string[] KnownVariants = ["two-pass", "share"];

    public int Processes { get; init; } = 3;
    public int Rounds { get; init; } = 15;
    public int Warmup { get; init; } = 3;
    public int Threads { get; init; } = 2;
    public int BatchSize { get; init; } = 128;
    public IReadOnlyList<string> Configs { get; init; } = ["sdfp8"];
    public IReadOnlyList<string> Variants { get; init; } = [];
    public bool Contend { get; init; }
    public bool RetainMemory { get; init; } = true;
    public bool EndStep { get; init; } = true;
    public long Seed { get; init; } = 1;
    public string DataDirectory { get; init; } = Training.Data.FashionMnist.DefaultDirectory;
    public bool Help { get; init; }

    /// <summary>The arms in the order of the first round: FP32, the configs, then the variants of the first config.</summary>
    public IEnumerable<(string Name, string Config, string? Variant)> Arms()
    {
        yield return ("fp32", "fp32", null);
        foreach (var c in Configs)
            yield return (c, c, null);
        foreach (var v in Variants)
            yield return ($"{Configs[0]}-{v}", Configs[0], v);
    }

    /// <summary>
    /// The experiment's policies: S-DFP8 is DFP8 weights with S-DFP8(s=1) activations and errors, the shifts the
    /// Fashion-MNIST probe chose and the main job uses.
    /// </summary>
    public static QuantizationPolicy Policy(string config, long seed) =>
        ExperimentConfig.Create(config, seed, new Dictionary<int, (int, int, int)> { [8] = (0, 1, 1), [6] = (0, 1, 1) }).Policy;

    /// <summary>The arguments that reproduce these options in a measuring process.</summary>
    public IEnumerable<string> ChildArguments()
    {
        yield return "--rounds"; yield return Rounds.ToString(CultureInfo.InvariantCulture);
        yield return "--warmup"; yield return Warmup.ToString(CultureInfo.InvariantCulture);
        yield return "--threads"; yield return Threads.ToString(CultureInfo.InvariantCulture);
        yield return "--batch-size"; yield return BatchSize.ToString(CultureInfo.InvariantCulture);
        yield return "--configs"; yield return string.Join(",", Configs);
        yield return "--seed"; yield return Seed.ToString(CultureInfo.InvariantCulture);
        yield return "--data"; yield return DataDirectory;
        if (Variants.Count > 0)
        {
            yield return "--variants";
            yield return string.Join(",", Variants);
        }
        if (!RetainMemory)
            yield return "--default-allocator";
        if (!EndStep)
            yield return "--no-end-step";
    }

    public static StepOptions Parse(IReadOnlyList<string> args, out int? childIndex, out int? spinParent)
    {
        var options = new StepOptions();
        childIndex = null;
        spinParent = null;
        for (var i = 0; i < args.Count; i++)
        {
            var name = args[i];
            string Value() => i + 1 < args.Count ? args[++i] : throw new ArgumentException($"Option {name} needs a value.");
            int Int(int min) => int.TryParse(Value(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) && v >= min
                ? v : throw new ArgumentException($"Option {name} needs an integer ≥ {min}; got '{args[i]}'.");
            switch (name)
            {
                case "--processes": options = options with { Processes = Int(1) }; break;
                case "--rounds": options = options with { Rounds = Int(1) }; break;
                case "--warmup": options = options with { Warmup = Int(0) }; break;
                case "--threads": options = options with { Threads = Int(1) }; break;
                case "--batch-size": options = options with { BatchSize = Int(2) }; break;
                case "--configs":
                    var configs = Value().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                        .Select(c => c.ToLowerInvariant()).Distinct().ToList();
                    var unknown = configs.Where(c => !KnownConfigs.Contains(c)).ToList();
                    if (unknown.Count > 0 || configs.Count == 0)
                        throw new ArgumentException($"Unknown config(s) '{string.Join(",", unknown)}' in --configs; choose from {string.Join(",", KnownConfigs)}.");
                    options = options with { Configs = configs };
                    break;
                case "--variants":
                    var variants = Value().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                        .Select(c => c.ToLowerInvariant()).Distinct().ToList();
                    var unknownVariants = variants.Where(c => !KnownVariants.Contains(c)).ToList();
                    if (unknownVariants.Count > 0)
                        throw new ArgumentException($"Unknown variant(s) '{string.Join(",", unknownVariants)}' in --variants; choose from {string.Join(",", KnownVariants)}.");
                    options = options with { Variants = variants };
                    break;
                case "--contend": options = options with { Contend = true }; break;
                case "--default-allocator": options = options with { RetainMemory = false }; break;
                case "--no-end-step": options = options with { EndStep = false }; break;
                case "--seed":
                    options = options with { Seed = long.TryParse(Value(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var s) ? s : throw new ArgumentException($"--seed needs an integer; got '{args[i]}'.") };
                    break;
                case "--data": options = options with { DataDirectory = Value() }; break;
                case "--child": childIndex = Int(0); break;
                case "--spin": spinParent = Int(1); break;
                case "--help" or "-h": options = options with { Help = true }; break;
                default: throw new ArgumentException($"Unknown option '{name}'.");
            }
        }
        return options;
    }
}
