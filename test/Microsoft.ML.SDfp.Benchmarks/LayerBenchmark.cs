using System.Diagnostics;
using System.Globalization;
using Microsoft.ML.SDfp.Numerics.Formats;
using Microsoft.ML.SDfp.Numerics.Layers;
using Microsoft.ML.SDfp.Numerics.Quantization;
using Microsoft.ML.SDfp.Numerics.Telemetry;
using Microsoft.ML.SDfp.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using RoundingMode = Microsoft.ML.SDfp.Numerics.Formats.RoundingMode;

namespace Microsoft.ML.SDfp.Benchmarks;

/// <summary>
/// Quantised conv layer forward+backward against FP32, side by side in one run: 64→64 channels, 3×3, pad 1, 28×28,
/// batch 128 (a ResNet stage-1 conv on Fashion-MNIST). Variants run interleaved, one repetition of each per round, so
/// that load from other processes on the machine hits all of them alike; medians are reported.
/// </summary>
internal static class LayerBenchmark
{
    private const string Usage = """
        usage: Microsoft.ML.SDfp.Benchmarks layer [options]
          --reps N            timed rounds (default 15); every round runs every variant once
          --warmup N          untimed rounds first (default 2)
          --threads N         torch intra-op threads (default: libtorch's default)
          --batch N           batch size (default 128)
          --shift S           shift of the S-DFP8 format (default 2)
          --variants a,b,...  subset of: torch, fp32, sdfp8, sdfp8-reference, sdfp8-delayed, sdfp8-telemetry,
                              sdfp8-telemetry10, auto8, stochastic8, sdfp8-2threads, w-only, a-only, g-only
                              (default: all)
          --fused-threads N   threads of the fused quantisation kernel (default: automatic, 1 per 8M elements)
          --leaf-input        feed the layer a leaf tensor (default: the output of a ReLU, as inside a ResNet, so
                              that dgrad flows into a predecessor op instead of being accumulated into x.grad)
          --retain-memory     call NativeMemoryTuning.RetainFreedMemory() first (glibc keeps freed tensor memory, so
                              no page faults on re-allocation; applies to every variant alike)
          --kernels           also time the quantisation kernels alone on one activation-sized tensor
          --telemetry-csv P   after the run, write the telemetry of the telemetry variant to P (CSV)
          --telemetry-json P  likewise as JSON
        """;

    public static int Run(string[] args)
    {
        TorchSharpRuntime.EnsureLoaded();
        Options options;
        try
        {
            options = Options.Parse(args);
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine(e.Message);
            Console.Error.WriteLine(Usage);
            return 2;
        }
        if (options.Help)
        {
            Console.WriteLine(Usage);
            return 0;
        }
        if (options.Threads is { } threads)
            set_num_threads(threads);
        FusedQuantization.ThreadOverride = options.FusedThreads;
        var retained = options.RetainMemory && NativeMemoryTuning.RetainFreedMemory();
        if (options.RetainMemory && !retained)
            Console.WriteLine("note: --retain-memory has no effect here (not glibc on Linux)");

        var format = DfpFormat.SDfp(8, options.Shift);
        var telemetry = new QuantizationTelemetry();
        var sampled = new QuantizationTelemetry { SampleEvery = 10 };
        var all = new List<Variant>
        {
            Variant.Torch(),
            Variant.Layer("fp32", QuantizationConfig.Fp32),
            Variant.Layer("sdfp8", QuantizationConfig.Uniform(format)),
            Variant.Layer("sdfp8-2threads", QuantizationConfig.Uniform(format), fusedThreads: 2),
            Variant.Layer("w-only", new QuantizationConfig { Weight = format }),
            Variant.Layer("a-only", new QuantizationConfig { Activation = format }),
            Variant.Layer("g-only", new QuantizationConfig { Error = format }),
            Variant.Layer("sdfp8-reference", QuantizationConfig.Uniform(format), reference: true),
            Variant.Layer("sdfp8-delayed", QuantizationConfig.Uniform(format with { ExponentSource = ExponentSource.Delayed })),
            Variant.Layer("sdfp8-telemetry", QuantizationConfig.Uniform(format), telemetry),
            Variant.Layer("sdfp8-telemetry10", QuantizationConfig.Uniform(format), sampled),
            Variant.Layer("auto8", QuantizationConfig.Uniform(DfpFormat.Auto(8))),
            Variant.Layer("stochastic8", QuantizationConfig.Uniform(format with { Rounding = Numerics.Formats.RoundingMode.Stochastic })),
        };
        var variants = options.Variants is null ? all : all.Where(v => options.Variants.Contains(v.Name)).ToList();
        if (variants.Count == 0)
        {
            Console.Error.WriteLine($"No known variant in --variants; choose from {string.Join(", ", all.Select(v => v.Name))}.");
            return 2;
        }

        Console.WriteLine($"layer benchmark: conv 64->64 3x3 pad 1, input [{options.Batch}, 64, 28, 28], forward+backward (dgrad and wgrad)");
        Console.WriteLine(options.LeafInput ? "input: a leaf tensor (dgrad accumulated into x.grad)" : "input: relu(leaf), timed in every variant (dgrad flows into ReLU backward)");
        Console.WriteLine(retained ? "allocator: glibc told to retain freed memory (--retain-memory)" : "allocator: default glibc behaviour (freed large blocks go back to the kernel)");
        Console.WriteLine($"threads {get_num_threads()}, {options.Warmup} warm-up + {options.Reps} timed rounds, variants interleaved; S-DFP8 = {format}");

        using var input = randn(options.Batch, 64, 28, 28);
        using var gradient = randn(options.Batch, 64, 28, 28);
        var times = variants.ToDictionary(v => v.Name, _ => new List<double>());
        for (var round = 0; round < options.Warmup + options.Reps; round++)
        {
            telemetry.Step = sampled.Step = round;
            foreach (var variant in variants)
            {
                var elapsed = variant.Step(input, gradient, options.LeafInput);
                if (round >= options.Warmup)
                    times[variant.Name].Add(elapsed);
            }
        }

        var torchMedian = times.TryGetValue("torch", out var t) ? Median(t) : double.NaN;
        var fp32Median = times.TryGetValue("fp32", out var f) ? Median(f) : double.NaN;
        Console.WriteLine();
        Console.WriteLine($"{"variant",-18} {"median ms",10} {"min ms",8} {"max ms",8} {"vs torch",9} {"vs fp32",8}");
        foreach (var variant in variants)
        {
            var list = times[variant.Name];
            var median = Median(list);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"{variant.Name,-18} {median,10:F1} {list.Min(),8:F1} {list.Max(),8:F1} {median / torchMedian,9:F3} {median / fp32Median,8:F3}"));
        }
        Console.WriteLine();
        Console.WriteLine("Ratios are medians of interleaved runs. Other processes on a shared machine add noise; compare min and max too.");

        if (options.Kernels)
            KernelCosts(input, format, options.Reps);

        if (options.TelemetryCsv is { } csv)
        {
            telemetry.WriteCsv(csv);
            Console.WriteLine($"telemetry CSV: {Path.GetFullPath(csv)} ({telemetry.Records.Count} records)");
        }
        if (options.TelemetryJson is { } json)
        {
            telemetry.WriteJson(json);
            Console.WriteLine($"telemetry JSON: {Path.GetFullPath(json)} ({telemetry.Records.Count} records)");
        }
        foreach (var variant in variants)
            variant.Dispose();
        return 0;
    }

    /// <summary>Per-op costs on one activation-sized tensor, interleaved like the layer variants.</summary>
    private static void KernelCosts(Tensor x, DfpFormat format, int reps)
    {
        var auto = new TensorQuantizer("auto", TensorRole.Activation, DfpFormat.Auto(8));
        var plain = new TensorQuantizer("plain", TensorRole.Activation, format);
        var exponent = Dfp.Exponent(FusedQuantization.Amax(x), format, format.Shift);
        var ops = new (string Name, Action Body)[]
        {
            ("clone (1 read + 1 write)", () => x.clone().Dispose()),
            ("amax torch abs().max()", () => TorchQuantization.Amax(x)),
            ("amax fused", () => FusedQuantization.Amax(x)),
            ("fake-quant fused", () => FusedQuantization.Quantize(x, exponent, format, 0, true, false, out _).Dispose()),
            ("fake-quant fused + stats", () => FusedQuantization.Quantize(x, exponent, format, 0, true, true, out _).Dispose()),
            ("fake-quant torch ops", () => TorchQuantization.FakeQuantize(x, exponent, format, null, false, out _).Dispose()),
            ("fake-quant torch + stats", () => TorchQuantization.FakeQuantize(x, exponent, format, null, true, out _).Dispose()),
            ("auto-shift choice only", () => AutoShiftCost(x)),
            ("quantiser S-DFP8 (amax+quant)", () => plain.FakeQuantize(x).Dispose()),
            ("quantiser Auto8", () => auto.FakeQuantize(x).Dispose()),
        };
        var times = ops.Select(_ => new List<double>()).ToArray();
        for (var r = 0; r < reps + 1; r++)
            for (var i = 0; i < ops.Length; i++)
            {
                using var scope = NewDisposeScope();
                var watch = Stopwatch.StartNew();
                ops[i].Body();
                if (r > 0)
                    times[i].Add(watch.Elapsed.TotalMilliseconds);
            }
        Console.WriteLine();
        Console.WriteLine($"kernel costs on [{string.Join(", ", x.shape)}] ({x.numel() * 4 / 1e6:F1} MB), medians of {reps}:");
        for (var i = 0; i < ops.Length; i++)
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {ops[i].Name,-32} {Median(times[i]),8:F2} ms  (min {times[i].Min():F2})"));
    }

    private static void AutoShiftCost(Tensor x)
    {
        var format = DfpFormat.Auto(8);
        AutoShift.Choose(x, 4.0, 4.0, format);
    }

    private static double Median(List<double> values)
    {
        var sorted = values.Order().ToArray();
        return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
    }

    private sealed class Variant : IDisposable
    {
        private readonly Func<Tensor, Tensor> _forward;
        private readonly Parameter[] _parameters;
        private readonly IDisposable _owner;
        private readonly bool _reference;

        private Variant(string name, Func<Tensor, Tensor> forward, Parameter[] parameters, IDisposable owner, bool reference)
        {
            Name = name;
            _forward = forward;
            _parameters = parameters;
            _owner = owner;
            _reference = reference;
        }

        public string Name { get; }

        public static Variant Torch()
        {
            // Plain torch conv2d with the same initialisation: the floor any quantised layer is measured against.
            var source = new QuantizedConv2d("torch", 64, 64, 3, padding: 1);
            var weight = source.weight;
            return new Variant("torch", x => nn.functional.conv2d(x, weight, padding: [1, 1]), [weight], source, false);
        }

        public static Variant Layer(string name, QuantizationConfig config, QuantizationTelemetry? telemetry = null,
            bool reference = false, int fusedThreads = -1)
        {
            var conv = new QuantizedConv2d(name, 64, 64, 3, padding: 1, config: config, telemetry: telemetry);
            return new Variant(name, conv.forward, [conv.weight], conv, reference) { FusedThreads = fusedThreads };
        }

        /// <summary>Thread cap of the fused kernel while this variant runs; -1 keeps the run's setting.</summary>
        public int FusedThreads { get; init; } = -1;

        /// <summary>One forward+backward; returns milliseconds.</summary>
        public double Step(Tensor input, Tensor gradient, bool leafInput)
        {
            foreach (var p in _parameters)
                p.grad = null;
            var saved = QuantizationKernel.UseFused;
            var savedThreads = FusedQuantization.ThreadOverride;
            QuantizationKernel.UseFused = !_reference;
            if (FusedThreads >= 0)
                FusedQuantization.ThreadOverride = FusedThreads;
            try
            {
                using var scope = NewDisposeScope();
                var watch = Stopwatch.StartNew();
                var leaf = input.detach().requires_grad_();
                // Inside a network the conv input comes from BN/ReLU; the predecessor's cost is timed for every variant alike.
                var x = leafInput ? leaf : nn.functional.relu(leaf);
                var y = _forward(x);
                y.backward([gradient]);
                watch.Stop();
                return watch.Elapsed.TotalMilliseconds;
            }
            finally
            {
                QuantizationKernel.UseFused = saved;
                FusedQuantization.ThreadOverride = savedThreads;
            }
        }

        public void Dispose() => _owner.Dispose();
    }

    private sealed record Options(int Reps, int Warmup, int? Threads, int Batch, int Shift, HashSet<string>? Variants,
        string? TelemetryCsv, string? TelemetryJson, bool Help, bool Kernels = false, int FusedThreads = 0, bool LeafInput = false, bool RetainMemory = false)
    {
        public static Options Parse(string[] args)
        {
            var o = new Options(15, 2, null, 128, 2, null, null, null, false);
            for (var i = 0; i < args.Length; i++)
            {
                string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"Option {args[i]} needs a value.");
                int Int(string name, int min)
                {
                    var text = Value();
                    return int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) && v >= min
                        ? v
                        : throw new ArgumentException($"Option {name} = '{text}' must be an integer >= {min}.");
                }
                o = args[i] switch
                {
                    "--reps" => o with { Reps = Int("--reps", 1) },
                    "--warmup" => o with { Warmup = Int("--warmup", 0) },
                    "--threads" => o with { Threads = Int("--threads", 1) },
                    "--batch" => o with { Batch = Int("--batch", 1) },
                    "--shift" => o with { Shift = Int("--shift", -DfpFormat.MaxShiftMagnitude) },
                    "--variants" => o with { Variants = Value().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToHashSet() },
                    "--telemetry-csv" => o with { TelemetryCsv = Value() },
                    "--telemetry-json" => o with { TelemetryJson = Value() },
                    "--help" or "-h" => o with { Help = true },
                    "--kernels" => o with { Kernels = true },
                    "--leaf-input" => o with { LeafInput = true },
                    "--retain-memory" => o with { RetainMemory = true },
                    "--fused-threads" => o with { FusedThreads = Int("--fused-threads", 1) },
                    _ => throw new ArgumentException($"Unknown option '{args[i]}'."),
                };
            }
            return o;
        }
    }
}
