using System.Globalization;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.ML.SDfp.Training.Data;
using Microsoft.ML.SDfp.Distributed.Exchange;
using Microsoft.ML.SDfp.Distributed.Mpi;
using Microsoft.ML.SDfp.Training.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Microsoft.ML.SDfp.Training;

/// <summary>
/// The MPI side of one distributed <see cref="ImageClassifierTrainer.Fit"/>: start-up agreement, rank 0's weights,
/// the per-step gradient exchange, batch-norm statistics, epoch metrics and the final consistency check.
/// </summary>
/// <remarks>
/// Every method is collective (all ranks call it at the same point). Decisions that could differ between ranks (skip a
/// step, stop early) are made from all-reduced or broadcast values only, so no rank can leave the others waiting.
/// </remarks>
internal sealed class DistributedTraining
{
    private readonly MpiCommunicator _world;
    private readonly GradientExchange _exchange;
    private readonly Parameter[] _parameters;

    private DistributedTraining(MpiCommunicator world, DistributedTrainingOptions options, Parameter[] parameters, long shardCount)
    {
        _world = world;
        _parameters = parameters;
        _exchange = new GradientExchange(world, options.GradientExchange, parameters.Select(p => checked((int)p.numel())).ToArray(),
            options.GradientExchangeBits, options.GradientExchangeShift);
        ShardCount = shardCount;
    }

    public int Rank => _world.Rank;

    public int Size => _world.Size;

    /// <summary>Images every rank uses per epoch: the smallest shard, so that all ranks run the same number of steps.</summary>
    public long ShardCount { get; }

    /// <summary>Bytes this rank hands to MPI per step for gradients, and the FP32 figure for comparison.</summary>
    public (long Bytes, long Fp32Bytes) BytesPerStep => (_exchange.BytesPerStep, _exchange.Fp32BytesPerStep);

    /// <summary>
    /// Joins the MPI job, refuses to start (on every rank, naming the difference) when the ranks disagree, and copies
    /// rank 0's weights and buffers into every rank's model.
    /// </summary>
    /// <param name="options">The training options; they must be equal on every rank.</param>
    /// <param name="model">The model to train; rank 0's weights and buffers overwrite the others'.</param>
    /// <param name="resNet">The same model as a ResNet, whose options are compared too, or null.</param>
    /// <param name="train">This rank's shard.</param>
    /// <param name="validation">The validation set, used on rank 0 only; present on every rank or on none.</param>
    /// <param name="parameters">The trained parameters, in the order their gradients are exchanged.</param>
    /// <param name="localError">
    /// This rank's own start-up check of its data, if it failed: it is compared like any setting, so that one rank's bad
    /// data stops every rank instead of leaving the others waiting.
    /// </param>
    public static DistributedTraining Start(TrainingOptions options, nn.Module<Tensor, Tensor> model, ResNetModel? resNet,
        ImageDataset train, ImageDataset? validation, IReadOnlyList<Parameter> parameters, Exception? localError)
    {
        var world = MpiCommunicator.World;
        var description = Describe(options, resNet, train, validation);
        description.Insert(0, $"data check = {(localError is null ? "passed" : "failed: " + localError.Message.ReplaceLineEndings(" "))}");
        RefuseDisagreement(world, description);
        if (localError is not null)
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(localError).Throw(); // the same on every rank

        // Rows i mod P give shards within one row of each other; held-out validation rows and skipped rows may shift
        // that a little. A larger gap means the ranks read different data.
        var shards = world.AllGather<long>([train.Count]);
        if (shards.Max() - shards.Min() > Math.Max(2, shards.Max() / 100))
            throw new DistributedTrainingException(
                $"The ranks' training shards differ by more than 1 % ({string.Join(", ", shards.Select((c, r) => $"rank {r}: {c}"))} images); " +
                "give rank r the rows i with i mod P = r of the same data.");
        if (options.BatchSize % world.Size != 0 || options.BatchSize / world.Size < 2)
            throw new DistributedTrainingException(
                $"TrainingOptions.BatchSize ({options.BatchSize}) is the global batch and must be a multiple of the number of ranks ({world.Size}) with at least 2 images per rank.");

        var training = new DistributedTraining(world, options.Distributed!, parameters.ToArray(), shards.Min());
        training.BroadcastFromRankZero(model);
        return training;
    }

    /// <summary>
    /// Sums the gradients of all ranks and divides by the rank count, so every rank holds the gradient of the global
    /// batch's mean loss. A rank whose forward pass failed sends NaN, so every rank sees the failure.
    /// </summary>
    public void ExchangeGradients(bool localFailure)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var flat = cat(_parameters.Select(p => (p.grad ?? zeros_like(p)).flatten()).ToList(), 0).contiguous();
        if (localFailure)
            flat.fill_(float.NaN);
        _exchange.SumInPlace(MemoryMarshal.Cast<byte, float>(flat.bytes));
        flat.div_(Size);
        long offset = 0;
        foreach (var parameter in _parameters)
        {
            var n = parameter.numel();
            var sum = flat.narrow(0, offset, n).view_as(parameter);
            if (parameter.grad is { } grad)
                grad.copy_(sum);
            else
                parameter.grad = sum.clone().DetachFromDisposeScope();
            offset += n;
        }
    }

    /// <summary>
    /// Averages floating-point buffers (batch-norm running mean and variance) over the ranks. The running statistics are
    /// exponential moving averages, which are linear, so averaging once per epoch equals averaging every step.
    /// </summary>
    public void AverageBuffers(nn.Module model)
    {
        using var scope = NewDisposeScope();
        using var noGrad = no_grad();
        var buffers = model.buffers().Where(b => b.is_floating_point() && b.dtype == ScalarType.Float32).ToList();
        if (buffers.Count == 0)
            return;
        var flat = cat(buffers.Select(b => b.flatten()).ToList(), 0).contiguous();
        _world.AllReduce(MemoryMarshal.Cast<byte, float>(flat.bytes), MpiOperation.Sum);
        flat.div_(Size);
        long offset = 0;
        foreach (var buffer in buffers)
        {
            var n = buffer.numel();
            buffer.copy_(flat.narrow(0, offset, n).view_as(buffer));
            offset += n;
        }
    }

    /// <summary>Sums an epoch's loss, correct count and image count over the ranks.</summary>
    public (double LossSum, long Correct, long Seen) SumEpoch(double lossSum, long correct, long seen)
    {
        Span<double> values = [lossSum, correct, seen];
        _world.AllReduce(values, MpiOperation.Sum);
        return (values[0], (long)values[1], (long)values[2]);
    }

    /// <summary>Rank 0's validation result, on every rank: decisions such as early stopping must not differ.</summary>
    public (double? Loss, double? Accuracy) ShareValidation(double? loss, double? accuracy)
    {
        Span<double> values = [loss is null ? 0 : 1, loss ?? 0, accuracy ?? 0];
        _world.Broadcast(values, root: 0);
        return values[0] == 0 ? (null, null) : (values[1], values[2]);
    }

    /// <summary>Fails on every rank when the ranks' weights or buffers are not bit-identical.</summary>
    public void CheckSameModel(nn.Module model)
    {
        var hashes = _world.AllGather<long>([Hash(model)]);
        if (hashes.Distinct().Count() > 1)
            throw new DistributedTrainingException(
                $"The ranks ended with different models (weight hashes {string.Join(", ", hashes.Select((h, r) => $"rank {r}: {h:x16}"))}).");
    }

    /// <summary>
    /// Ends the whole job from a rank that cannot go on (<c>MPI_Abort</c>): the other ranks are waiting for this one in
    /// a collective call and would wait forever.
    /// </summary>
    public void Abort(Exception error)
    {
        Console.Error.WriteLine($"rank {Rank} of {Size}: training failed, aborting the MPI job: {error}");
        Console.Error.Flush();
        _world.Abort(1);
    }

    /// <summary>FNV-1a over every parameter's and buffer's bytes, in module order.</summary>
    internal static long Hash(nn.Module model)
    {
        var hash = 14695981039346656037UL;
        foreach (var tensor in model.parameters().Select(p => (Tensor)p).Concat(model.buffers()))
        {
            using var contiguous = tensor.detach().contiguous();
            foreach (var b in contiguous.bytes)
                hash = (hash ^ b) * 1099511628211UL;
        }
        return unchecked((long)hash);
    }

    private void BroadcastFromRankZero(nn.Module model)
    {
        using var noGrad = no_grad();
        foreach (var tensor in model.parameters().Select(p => (Tensor)p).Concat(model.buffers()))
        {
            if (!tensor.is_contiguous())
                throw new InvalidOperationException("Distributed training needs contiguous parameters and buffers.");
            _world.Broadcast(tensor.bytes, root: 0);
        }
    }

    /// <summary>One "name = value" line per setting that must be equal on every rank.</summary>
    private static List<string> Describe(TrainingOptions options, ResNetModel? resNet, ImageDataset train, ImageDataset? validation)
    {
        var lines = new List<string>();
        AddProperties(lines, "TrainingOptions", options);
        if (options.Distributed is { } distributed)
            AddProperties(lines, "TrainingOptions.Distributed", distributed);
        if (resNet is not null)
            AddProperties(lines, "ResNetOptions", resNet.Options);
        lines.Add($"training image shape = [{string.Join(", ", train.Images.shape.Skip(1))}]");
        lines.Add($"training class count = {train.ClassCount}");
        lines.Add($"validation set = {(validation is null ? "none" : $"images of [{string.Join(", ", validation.Images.shape.Skip(1))}]")}");
        return lines;
    }

    private static void AddProperties(List<string> lines, string prefix, object value)
    {
        foreach (var property in value.GetType().GetProperties(BindingFlags.Public | BindingFlags.Instance).OrderBy(p => p.Name, StringComparer.Ordinal))
        {
            if (property.PropertyType == typeof(DistributedTrainingOptions))
                continue;
            var v = property.GetValue(value);
            lines.Add($"{prefix}.{property.Name} = {Convert.ToString(v, CultureInfo.InvariantCulture) ?? "null"}");
        }
    }

    /// <summary>
    /// Rank 0 broadcasts its description; every rank compares it with its own; the lowest rank that differs
    /// broadcasts its finding, and every rank throws it.
    /// </summary>
    private static void RefuseDisagreement(MpiCommunicator world, List<string> description)
    {
        var mine = Encoding.UTF8.GetBytes(string.Join("\n", description));
        var length = world.Rank == 0 ? mine.Length : 0;
        length = BroadcastInt(world, length);
        var rankZero = world.Rank == 0 ? mine : new byte[length];
        world.Broadcast(rankZero.AsSpan(), root: 0);

        var theirs = Encoding.UTF8.GetString(rankZero).Split('\n');
        var finding = "";
        for (var i = 0; i < Math.Max(theirs.Length, description.Count) && finding.Length == 0; i++)
        {
            var a = i < theirs.Length ? theirs[i] : "(nothing)";
            var b = i < description.Count ? description[i] : "(nothing)";
            if (a != b)
            {
                var name = b.Split(" = ")[0];
                finding = $"The ranks disagree at start-up: {name} is {Value(a)} on rank 0 but {Value(b)} on rank {world.Rank}. " +
                    "Every rank must run with the same options and the same kind of data.";
            }
        }
        var findingBytes = Encoding.UTF8.GetBytes(finding);
        var lengths = world.AllGather<int>([findingBytes.Length]);
        var first = Array.FindIndex(lengths, l => l > 0);
        if (first < 0)
            return;
        var message = world.Rank == first ? findingBytes : new byte[lengths[first]];
        world.Broadcast(message.AsSpan(), root: first);
        throw new DistributedTrainingException(Encoding.UTF8.GetString(message));
    }

    private static string Value(string line)
    {
        var at = line.IndexOf(" = ", StringComparison.Ordinal);
        return at < 0 ? line : line[(at + 3)..];
    }

    private static int BroadcastInt(MpiCommunicator world, int value)
    {
        Span<int> one = [value];
        world.Broadcast(one, root: 0);
        return one[0];
    }
}
