using System.Globalization;
using Microsoft.ML.SDfp.Training.Data;
using Microsoft.ML.SDfp.Distributed.Exchange;
using Microsoft.ML.SDfp.Distributed.Mpi;
using Microsoft.ML.SDfp.Training.Models;
using Microsoft.ML.SDfp.Numerics.Formats;
using Microsoft.ML.SDfp.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.SDfp.Distributed.Tests.RankHelper;

/// <summary>
/// Trains a ResNet-20 (S-DFP8 body, nearest rounding) on 8×8 synthetic images of 4 classes, distributed when started by
/// mpirun and in one process otherwise. Settings come as key=value: exchange, bits, epochs, batch, seed, images,
/// model (sdfp8 or fp32), duplicate (every image twice, so that both ranks' shards are the same images), disagree (rank 1 changes an option
/// or the data: lr, shape, shard, classes), out (folder for rank 0's weights), failAt (rank 1 throws after that step).
/// </summary>
internal static class TinyTraining
{
    public static int Run(string[] args)
    {
        var settings = args.Select(a => a.Split('=', 2)).ToDictionary(kv => kv[0], kv => kv[1]);
        string Get(string key, string fallback) => settings.TryGetValue(key, out var v) ? v : fallback;
        int Int(string key, int fallback) => int.Parse(Get(key, fallback.ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture);

        torch.set_num_threads(1);
        var distributed = MpiCommunicator.IsLaunchedByMpirun;
        var rank = distributed ? MpiCommunicator.World.Rank : 0;
        var ranks = distributed ? MpiCommunicator.World.Size : 1;
        void Say(string text) => Console.WriteLine($"rank {rank}: {text}");
        var disagree = rank == 1 ? Get("disagree", "") : "";

        var size = disagree == "shape" ? 10 : 8;
        using var all = Data(Int("images", 32), size, Get("duplicate", "0") == "1", classes: disagree == "classes" ? 5 : 4);
        using var shard = distributed ? all.Shard(rank, ranks) : all.Slice(0, all.Count);
        using var train = disagree == "shard" ? shard.Slice(0, 4) : shard.Slice(0, shard.Count);

        torch.manual_seed(Int("seed", 1) + 100L * rank); // ranks start different; rank 0's weights must win
        var format = new DfpFormat { Bits = 8 };
        using var model = ResNetFactory.Create(new ResNetOptions
        {
            Architecture = ResNetArchitecture.ResNet20,
            NumClasses = 4,
            InputChannels = 1,
            Quantization = Get("model", "sdfp8") == "fp32" ? QuantizationPolicy.Fp32 : QuantizationPolicy.Body(QuantizationConfig.Uniform(format)),
        });
        var options = new TrainingOptions
        {
            Epochs = Int("epochs", 2),
            BatchSize = Int("batch", 16),
            LearningRate = disagree == "lr" ? 0.05 : 0.1,
            Seed = Int("seed", 1),
            RandomCrop = Get("augment", "1") == "1",
            HorizontalFlip = Get("augment", "1") == "1",
            Distributed = distributed
                ? new DistributedTrainingOptions { GradientExchange = Enum.Parse<GradientExchangeFormat>(Get("exchange", "Fp32")), GradientExchangeBits = Int("bits", 8) }
                : null,
        };
        var trainer = new ImageClassifierTrainer(model, options);
        var firstStep = true;
        var failAt = rank == 1 ? Int("failAt", 0) : 0;
        trainer.StepCompleted += step =>
        {
            if (step.GlobalStep + 1 == failAt)
                throw new InvalidOperationException($"injected failure on rank 1 at step {failAt}");
            if (firstStep)
                Say($"pid {Environment.ProcessId} stepping");
            firstStep = false;
        };
        if (rank == 0)
            trainer.EpochCompleted += epoch => Say($"epoch {epoch.Epoch} loss {epoch.TrainLoss.ToString("R", CultureInfo.InvariantCulture)}");

        TrainingResult result;
        try
        {
            result = trainer.Fit(train);
        }
        catch (DistributedTrainingException e)
        {
            Say($"refused {e.Message}");
            Console.Out.Flush();
            // Every rank refused together; wait for all to have printed, because mpirun ends the job when the first exits.
            MpiCommunicator.World.Barrier();
            return 3;
        }
        Say($"hash {Hash(model):x16}");
        if (result.Distributed is { } d)
            Say($"bytes {d.GradientBytesPerStep} fp32 {d.Fp32GradientBytesPerStep}");
        if (rank == 0 && settings.TryGetValue("out", out var folder))
            WriteWeights(model, Path.Combine(folder, distributed ? "distributed.bin" : "single.bin"));
        return 0;
    }

    /// <summary>Images = class pattern + noise, from a fixed generator; with duplicate, images 2k and 2k+1 are equal.</summary>
    private static ImageDataset Data(int count, int size, bool duplicate, int classes)
    {
        using var scope = NewDisposeScope();
        using var generator = new Generator(1234);
        var distinct = duplicate ? count / 2 : count;
        var labels = arange(distinct, dtype: ScalarType.Int64).remainder(4);
        var patterns = randn([4, 1, size, size], generator: generator);
        var images = patterns.index_select(0, labels) + 0.5f * randn([distinct, 1, size, size], generator: generator);
        if (duplicate)
        {
            images = images.repeat_interleave(2, dim: 0);
            labels = labels.repeat_interleave(2, dim: 0);
        }
        return new ImageDataset(images, labels, classes);
    }

    private static ulong Hash(nn.Module model)
    {
        var hash = 14695981039346656037UL;
        foreach (var tensor in model.parameters().Select(p => (Tensor)p).Concat(model.buffers()))
        {
            using var contiguous = tensor.detach().contiguous();
            foreach (var b in contiguous.bytes)
                hash = (hash ^ b) * 1099511628211UL;
        }
        return hash;
    }

    /// <summary>Name, element count and float32 values of every parameter and float buffer; written to a temporary name and renamed.</summary>
    private static void WriteWeights(nn.Module model, string path)
    {
        var temp = path + ".tmp";
        using (var writer = new BinaryWriter(File.Create(temp)))
        {
            foreach (var (name, tensor) in model.named_parameters().Select(p => (p.name, (Tensor)p.parameter)).Concat(model.named_buffers()))
            {
                if (tensor.dtype != ScalarType.Float32)
                    continue;
                using var contiguous = tensor.detach().contiguous();
                var values = contiguous.data<float>().ToArray();
                writer.Write(name);
                writer.Write(values.Length);
                foreach (var v in values)
                    writer.Write(v);
            }
        }
        File.Move(temp, path, overwrite: true);
    }
}
