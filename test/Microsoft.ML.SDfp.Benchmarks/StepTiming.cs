using System.Diagnostics;
using Microsoft.ML.SDfp.Numerics.Layers;
using Microsoft.ML.SDfp.Training.Data;
using Microsoft.ML.SDfp.Training.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.SDfp.Benchmarks;

/// <summary>
/// Training-step time of a quantised ResNet (the experiment's <see cref="ExperimentModel"/>) against the FP32 one, measured side by side: the two models take turns
/// (alternating which goes first), so machine load that comes and goes hits both alike. The ratio of medians is
/// reported. The <c>step</c> command measures the same step more thoroughly (separate processes, phases, page faults).
/// </summary>
internal static class StepTiming
{
    public static StepTimingResult Measure(ExperimentConfig quantized, string model, ImageDataset train, int batchSize, int rounds, long seed, int threads)
    {
        using var scope = NewDisposeScope();
        var n = (int)Math.Min(batchSize, train.Count);
        var images = train.Images.narrow(0, 0, n);
        var labels = train.Labels.narrow(0, 0, n);
        using var fp32 = Create(model, QuantizationPolicy.Fp32, seed);
        using var quant = Create(model, quantized.Policy, seed);
        using var fp32Optimizer = optim.SGD(fp32.parameters(), 0.01, momentum: 0.9, weight_decay: 5e-4);
        using var quantOptimizer = optim.SGD(quant.parameters(), 0.01, momentum: 0.9, weight_decay: 5e-4);
        fp32.train();
        quant.train();

        for (var i = 0; i < 2; i++)   // warm-up: allocator, kernels
        {
            Step(fp32, fp32Optimizer, images, labels);
            Step(quant, quantOptimizer, images, labels);
        }

        var fp32Ms = new List<double>();
        var quantMs = new List<double>();
        for (var round = 0; round < rounds; round++)
        {
            if (round % 2 == 0)
            {
                fp32Ms.Add(Step(fp32, fp32Optimizer, images, labels));
                quantMs.Add(Step(quant, quantOptimizer, images, labels));
            }
            else
            {
                quantMs.Add(Step(quant, quantOptimizer, images, labels));
                fp32Ms.Add(Step(fp32, fp32Optimizer, images, labels));
            }
        }
        var fp32Median = Median(fp32Ms);
        var quantMedian = Median(quantMs);
        return new StepTimingResult(quantized.Name, n, (int)train.Images.shape[2], threads, rounds, fp32Median, quantMedian, quantMedian / fp32Median, fp32Ms, quantMs);
    }

    private static ResNetModel Create(string model, QuantizationPolicy policy, long seed)
    {
        torch.manual_seed(seed);
        return ExperimentModel.Create(model, policy);
    }

    private static double Step(ResNetModel model, optim.Optimizer optimizer, Tensor images, Tensor labels)
    {
        var clock = Stopwatch.StartNew();
        using (var scope = NewDisposeScope())
        {
            optimizer.zero_grad();
            var loss = nn.functional.cross_entropy(model.call(images), labels);
            loss.backward();
            optimizer.step();
            _ = loss.item<float>();
        }
        QuantizedBackward.EndStep(); // as the trainer ends every step
        return clock.Elapsed.TotalMilliseconds;
    }

    private static double Median(List<double> values)
    {
        var sorted = values.OrderBy(v => v).ToList();
        return sorted.Count % 2 == 1 ? sorted[sorted.Count / 2] : (sorted[sorted.Count / 2 - 1] + sorted[sorted.Count / 2]) / 2;
    }
}
