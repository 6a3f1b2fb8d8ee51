using System.Globalization;
using Microsoft.ML.SDfp.Runtime;
using Microsoft.ML.SDfp.Training.Data;

namespace Microsoft.ML.SDfp.Benchmarks;

/// <summary>Command line of <c>fashion-mnist</c>; every default is documented in <see cref="Usage"/>.</summary>
internal sealed record ExperimentOptions
{
    /// <summary>The configurations a run without <c>--configs</c> trains: the paper's comparison.</summary>
    public static readonly string[] DefaultConfigs = { "fp32", "dfp8", "sdfp8", "auto8", "dfp6", "sdfp6" };

    /// <summary>Every configuration, in report order: the defaults, then the 6-bit recipes beyond the paper.</summary>
    public static readonly string[] AllConfigs = [.. DefaultConfigs, "auto6", "sdfp6sr", "auto6sr"];

    public bool Full { get; init; }
    public IReadOnlyList<string> Configs { get; init; } = DefaultConfigs;
    public int Epochs { get; init; } = 3;
    public int TrainSize { get; init; } = 10_000;
    public int? TestSize { get; init; }
    public long Seed { get; init; } = 1;

    /// <summary>The network, one of <see cref="ExperimentModel.Names"/>; the shift probe and the step timing use it too.</summary>
    public string Model { get; init; } = ExperimentModel.Default;
    public int Threads { get; init; } = 2;
    public int BatchSize { get; init; } = 128;
    public double LearningRate { get; init; } = 0.1;
    public string OutputDirectory { get; init; } = "";
    public string DataDirectory { get; init; } = Training.Data.FashionMnist.DefaultDirectory;

    /// <summary>Folder for per-configuration training checkpoints (<c>--checkpoint</c>), or null for none.</summary>
    public string? CheckpointDirectory { get; init; }
    public int ProbeSteps { get; init; } = 4;
    public double SaturationBudget { get; init; } = 0.001;
    public int TimingRounds { get; init; } = 10;

    /// <summary>Random crop (pad 2) and horizontal flip; on in quick mode, off in full mode unless <c>--augmentation</c> says otherwise.</summary>
    public bool Augmentation { get; init; } = true;
    public bool Help { get; init; }

    /// <summary>Call <c>NativeMemoryTuning.RetainFreedMemory()</c> before anything else (process-wide, so FP32 and S-DFP alike).</summary>
    public bool RetainMemory { get; init; }

    /// <summary>True when --epochs, --train-size or --test-size changed the mode's data size or length.</summary>
    public bool Overridden { get; init; }

    public const string Usage = """
        usage: Microsoft.ML.SDfp.Benchmarks fashion-mnist [options]
          --quick               10 000 training images, 3 epochs, evaluated on the first 2 000 test images (default)
          --full                60 000 training images, 10 epochs without augmentation, evaluated on all 10 000 test images
          --configs a,b,...     some of fp32,dfp8,sdfp8,auto8,dfp6,sdfp6 (the default: all six) and the 6-bit recipes
                                auto6 (shift per tensor), sdfp6sr and auto6sr (the same with stochastic rounding of G)
          --retain-memory       call NativeMemoryTuning.RetainFreedMemory() first (glibc keeps freed tensor memory)
          --timing-only         train nothing: only the S-DFP8 shift probe and the FP32 / S-DFP8 step timing
          --epochs N            override the mode's epochs
          --train-size N        override the mode's training-set size (first N images)
          --test-size N         evaluate on the first N test images (default: the mode's)
          --seed N              seed of initialisation, shuffling, augmentation, rounding (default 1)
          --model NAME          resnet20, resnet32 or resnet56: CIFAR-style ResNet, 3 stages of 3, 5 or 9 blocks (default resnet20)
          --threads N           torch threads (default 2)
          --batch-size N        default 128
          --lr X                peak learning rate, cosine schedule (default 0.1)
          --augmentation on|off random crop (pad 2) + horizontal flip (default: on in quick mode, off in full mode)
          --probe-steps N       steps per candidate shift in the probe that picks the S-DFP shifts (default 4)
          --saturation-budget X largest mean saturated fraction a picked shift may cause (default 0.001 = 0.1 %)
          --timing-rounds N     interleaved FP32 / S-DFP8 step pairs for the step-time ratio (default 10; 0 skips it)
          --data DIR            Fashion-MNIST folder (default /usr/share/datasets/fashion-mnist)
          --out DIR             results folder (default docs/results in full mode, docs/results/quick in quick mode;
                                with another --model than resnet20, its subfolder named after the model, e.g. docs/results/resnet56)
          --checkpoint DIR      keep a training checkpoint per configuration in DIR/<config>, written after every epoch;
                                the same command run again after a kill resumes each configuration where it stopped
        """;

    public static ExperimentOptions Parse(IReadOnlyList<string> args)
    {
        var options = new ExperimentOptions();
        bool? full = null;
        int? epochs = null, trainSize = null;
        bool? augmentation = null;
        for (var i = 0; i < args.Count; i++)
        {
            var name = args[i];
            string Value() => i + 1 < args.Count ? args[++i] : throw new ArgumentException($"Option {name} needs a value.");
            int Int() => int.TryParse(Value(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) && v > 0
                ? v : throw new ArgumentException($"Option {name} needs a positive integer; got '{args[i]}'.");
            switch (name)
            {
                case "--quick": full = false; break;
                case "--full": full = true; break;
                case "--configs":
                    var configs = Value().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(c => c.ToLowerInvariant()).ToList();
                    var unknown = configs.Where(c => !AllConfigs.Contains(c)).ToList();
                    if (unknown.Count > 0 || configs.Count == 0)
                        throw new ArgumentException($"Unknown config(s) '{string.Join(",", unknown)}' in --configs; choose from {string.Join(",", AllConfigs)}.");
                    options = options with { Configs = configs.Distinct().ToList() };
                    break;
                case "--retain-memory": options = options with { RetainMemory = true }; break;
                case "--timing-only": options = options with { Configs = Array.Empty<string>() }; break;
                case "--epochs": epochs = Int(); break;
                case "--train-size": trainSize = Int(); break;
                case "--test-size": options = options with { TestSize = Int() }; break;
                case "--seed":
                    options = options with { Seed = long.TryParse(Value(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var s) ? s : throw new ArgumentException($"--seed needs an integer; got '{args[i]}'.") };
                    break;
                case "--model":
                    var model = Value().ToLowerInvariant();
                    options = options with { Model = ExperimentModel.Names.Contains(model) ? model : throw new ArgumentException($"--model needs one of {string.Join(", ", ExperimentModel.Names)}; got '{args[i]}'.") };
                    break;
                case "--threads": options = options with { Threads = Int() }; break;
                case "--batch-size": options = options with { BatchSize = Int() }; break;
                case "--lr":
                    options = options with { LearningRate = double.TryParse(Value(), NumberStyles.Float, CultureInfo.InvariantCulture, out var lr) && lr > 0 ? lr : throw new ArgumentException($"--lr needs a positive number; got '{args[i]}'.") };
                    break;
                case "--probe-steps": options = options with { ProbeSteps = Int() }; break;
                case "--saturation-budget":
                    options = options with { SaturationBudget = double.TryParse(Value(), NumberStyles.Float, CultureInfo.InvariantCulture, out var b) && b >= 0 && b < 1 ? b : throw new ArgumentException($"--saturation-budget needs a fraction in [0, 1); got '{args[i]}'.") };
                    break;
                case "--timing-rounds":
                    options = options with { TimingRounds = int.TryParse(Value(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var t) && t >= 0 ? t : throw new ArgumentException($"--timing-rounds needs a non-negative integer; got '{args[i]}'.") };
                    break;
                case "--augmentation":
                    augmentation = Value().ToLowerInvariant() switch
                    {
                        "on" => true,
                        "off" => false,
                        _ => throw new ArgumentException($"--augmentation needs 'on' or 'off'; got '{args[i]}'."),
                    };
                    break;
                case "--data": options = options with { DataDirectory = Value() }; break;
                case "--out": options = options with { OutputDirectory = Value() }; break;
                case "--checkpoint": options = options with { CheckpointDirectory = Value() }; break;
                case "--help" or "-h": options = options with { Help = true }; break;
                default: throw new ArgumentException($"Unknown option '{name}'.\n{Usage}");
            }
        }
        var isFull = full ?? false;
        return options with
        {
            Full = isFull,
            // Ten epochs without augmentation is what takes FP32 past 92 % on these 2-core machines in a sitting;
            // crop + flip slows convergence in a run that short (measured on the main job: -1.2 points at 3 epochs).
            Epochs = epochs ?? (isFull ? 10 : 3),
            Augmentation = augmentation ?? !isFull,
            OutputDirectory = options.OutputDirectory.Length > 0 ? options.OutputDirectory : DefaultOutput(isFull, options.Model),
            TrainSize = trainSize ?? (isFull ? 60_000 : 10_000),
            TestSize = options.TestSize ?? (isFull ? null : 2_000),
            Overridden = epochs is not null || trainSize is not null || options.TestSize is not null || (augmentation is { } a && a == isFull),
        };
    }

    /// <summary>Other models get a folder of their own, so that their reports never overwrite the ResNet-20 ones in <c>docs/results</c>.</summary>
    private static string DefaultOutput(bool full, string model)
    {
        var folder = full ? "docs/results" : "docs/results/quick";
        return model == ExperimentModel.Default ? folder : Path.Combine(folder, model);
    }

    public string Mode => (Full ? "full" : "quick") + (Overridden ? " (with overrides)" : "");
}
