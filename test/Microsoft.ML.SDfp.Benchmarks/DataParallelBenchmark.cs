using System.Globalization;
using Microsoft.ML.SDfp.Training.Data;
using Microsoft.ML.SDfp.Distributed.Exchange;
using Microsoft.ML.SDfp.Distributed.Mpi;
using Microsoft.ML.SDfp.Training.Models;
using Microsoft.ML.SDfp.Training;
using TorchSharp;

namespace Microsoft.ML.SDfp.Benchmarks;

/// <summary>
/// The <c>data-parallel</c> command: trains the S-DFP8 ResNet-20 (W DFP8, A and G S-DFP8 with shift 1) on Fashion-MNIST
/// with the plain training loop, in one process (<c>--threads</c>, <c>--replicas</c>) or as one rank of
/// <c>mpirun -np P</c> (each rank its shard), and prints training images per second per epoch and, on rank 0, the test
/// accuracy. The same code path for all three ways of using two cores makes their throughput comparable.
/// </summary>
internal static class DataParallelBenchmark
{
    public static int Run(string[] args)
    {
        string Get(string name, string fallback) => Array.IndexOf(args, name) is var at && at >= 0 && at + 1 < args.Length ? args[at + 1] : fallback;
        int Int(string name, int fallback) => int.Parse(Get(name, fallback.ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture);

        var threads = Int("--threads", 1);
        torch.set_num_threads(threads);
        var distributed = MpiCommunicator.IsLaunchedByMpirun;
        var rank = distributed ? MpiCommunicator.World.Rank : 0;
        var ranks = distributed ? MpiCommunicator.World.Size : 1;
        var exchange = Enum.Parse<GradientExchangeFormat>(Get("--exchange", "Fp32"), ignoreCase: true);
        var seed = Int("--seed", 1);

        using var all = FashionMnist.LoadTrain(limit: Int("--train-limit", 12000));
        using var train = distributed ? all.Shard(rank, ranks) : all.Slice(0, all.Count);
        using var test = rank == 0 ? FashionMnist.LoadTest(limit: Int("--test-limit", 10000)) : null;
        torch.manual_seed(seed);
        var config = ExperimentConfig.Create("sdfp8", seed, new Dictionary<int, (int W, int A, int G)> { [8] = (0, 1, 1) });
        using var model = ResNetFactory.Create(new ResNetOptions { Architecture = ResNetArchitecture.ResNet20, InputChannels = 1, NumClasses = 10, Quantization = config.Policy });
        var options = new TrainingOptions
        {
            Epochs = Int("--epochs", 1),
            BatchSize = 128,
            RandomCrop = false,
            HorizontalFlip = false,
            Seed = seed,
            Replicas = Int("--replicas", 1),
            Distributed = distributed ? new DistributedTrainingOptions { GradientExchange = exchange } : null,
        };
        var trainer = new ImageClassifierTrainer(model, options);
        var how = distributed ? $"mpirun -np {ranks}, {threads} thread(s) each, {exchange} exchange" : $"one process, {threads} thread(s), {options.Replicas} replica(s)";
        if (rank == 0)
        {
            Console.WriteLine($"# data-parallel: {how}; {all.Count} training images, batch {options.BatchSize}; load average {File.ReadAllText("/proc/loadavg").Trim()}");
            trainer.EpochCompleted += e => Console.WriteLine(
                $"epoch {e.Epoch}: {e.ImagesPerSecond.ToString("F0", CultureInfo.InvariantCulture)} img/s, train loss {e.TrainLoss.ToString("F4", CultureInfo.InvariantCulture)}");
        }
        var result = trainer.Fit(train);
        if (rank == 0)
        {
            if (result.Distributed is { } d)
                Console.WriteLine($"gradient bytes per step: {d.GradientBytesPerStep} ({d.Fp32GradientBytesPerStep} as FP32)");
            var (_, accuracy) = ImageClassifierTrainer.Evaluate(model, test!);
            Console.WriteLine($"test accuracy: {accuracy.ToString("P2", CultureInfo.InvariantCulture)} on {test!.Count} images; load average {File.ReadAllText("/proc/loadavg").Trim()}");
        }
        return 0;
    }
}
