using System.Globalization;
using Microsoft.ML.SDfp.Numerics.Layers;
using Microsoft.ML.SDfp.Runtime;
using Microsoft.ML.SDfp.Training;
using Microsoft.ML.SDfp.Training.Data;
using Microsoft.ML.SDfp.Training.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.SDfp.Benchmarks;

/// <summary>
/// <c>bn-eval</c>: is the mid-training collapse of test accuracy a batch-norm statistics effect? Trains one configuration
/// as the full-mode experiment does and, after every epoch, evaluates the same weights on the test set three ways: with
/// the running statistics (what validation uses), with statistics re-estimated over training batches ("precise BN"), and
/// with each test batch's own statistics. Training is not affected: the buffers and quantiser state are put back.
/// </summary>
internal static class BatchNormEvaluation
{
    public const string Usage = "bn-eval [--config fp32|dfp8|sdfp8] [--epochs 10] [--stop-after 4] [--batches 200 | --batches 25,50,200] [--seed 1] [--threads 2] [--train-size 60000] [--test-size 10000]";

    public static int Run(string[] args)
    {
        string Text(string name, string fallback) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault() ?? fallback;
        int Int(string name, int fallback) => int.Parse(Text(name, fallback.ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture);
        if (args.Contains("--help"))
        {
            Console.WriteLine(Usage);
            return 0;
        }

        var configName = Text("--config", "fp32");
        int epochs = Int("--epochs", 10), stopAfter = Int("--stop-after", 4), seed = Int("--seed", 1);
        // Several batch counts are evaluated on the same weights, so that one training answers how many are enough.
        int[] batchCounts = Text("--batches", "200").Split(',').Select(b => int.Parse(b, CultureInfo.InvariantCulture)).ToArray();
        TorchSharpRuntime.EnsureLoaded();
        torch.set_num_threads(Int("--threads", 2));
        using var train = FashionMnist.LoadTrain(limit: Int("--train-size", 60000));
        using var test = FashionMnist.LoadTest(limit: Int("--test-size", 10000));
        // The S-DFP8 shifts of the full-mode results (W s0, A s1, G s1), without re-running the probe.
        var config = ExperimentConfig.Create(configName, seed, new Dictionary<int, (int W, int A, int G)> { [8] = (0, 1, 1) });
        torch.manual_seed(seed);
        using var model = ResNetFactory.Create(new ResNetOptions
        {
            Architecture = ResNetArchitecture.ResNet20,
            InputChannels = 1,
            NumClasses = 10,
            Quantization = config.Policy,
        });
        var options = new TrainingOptions
        {
            Epochs = epochs,
            BatchSize = 128,
            LearningRate = 0.1,
            RandomCrop = false,
            HorizontalFlip = false,
            Seed = seed,
        };
        Console.WriteLine($"# bn-eval {string.Join(' ', args)}: {configName} ({config.Describe()}), {train.Count} training / {test.Count} test images, " +
            $"{epochs}-epoch cosine schedule stopped after {stopAfter}, precise BN over {string.Join(" / ", batchCounts)} batches of 128, load {File.ReadAllText("/proc/loadavg").Trim()}");
        Console.WriteLine("| epoch | train acc. | test acc., running statistics | " + string.Join(" | ", batchCounts.Select(b => $"test acc., precise BN ({b} batches)")) + " | test acc., batch statistics |");
        Console.WriteLine("| --- | --- | --- | " + string.Join(" | ", batchCounts.Select(_ => "---")) + " | --- |");

        using var stop = new CancellationTokenSource();
        var trainer = new ImageClassifierTrainer(model, options);
        trainer.EpochCompleted += m =>
        {
            using var buffers = new WeightSnapshot(model, buffersOnly: true);
            buffers.Capture();
            var precise = new List<double>();
            foreach (var batches in batchCounts)
            {
                BatchNormRecalibration.Run(model, train, batches, options.BatchSize, seed, m.Epoch);
                precise.Add(ClassifierEvaluation.Evaluate(model, test, 256, CancellationToken.None).Accuracy);
                buffers.Restore();
            }
            var batchStatistics = AccuracyWithBatchStatistics(model, test, 256);
            buffers.Restore();
            Console.WriteLine($"| {m.Epoch} | {m.TrainAccuracy:P2} | {m.ValidationAccuracy:P2} | {string.Join(" | ", precise.Select(p => p.ToString("P2", CultureInfo.InvariantCulture)))} | {batchStatistics:P2} |");
            if (m.Epoch >= stopAfter)
                stop.Cancel();
        };
        try
        {
            trainer.Fit(train, test, stop.Token);
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
        return 0;
    }

    /// <summary>Accuracy with batch norm in train mode, each test batch normalised by its own statistics (no gradients).</summary>
    private static double AccuracyWithBatchStatistics(ResNetModel model, ImageDataset test, int batchSize)
    {
        using var quantizers = new QuantizerStateScope(model.QuantizedLayers);
        var wasTraining = model.training;
        model.train();
        try
        {
            using var noGrad = no_grad();
            long correct = 0;
            for (long start = 0; start < test.Count; start += batchSize)
            {
                using var scope = NewDisposeScope();
                var length = Math.Min(batchSize, test.Count - start);
                var logits = model.call(test.Images.narrow(0, start, length));
                correct += logits.argmax(1).eq(test.Labels.narrow(0, start, length)).sum().item<long>();
            }
            return (double)correct / test.Count;
        }
        finally
        {
            model.train(wasTraining);
        }
    }
}
