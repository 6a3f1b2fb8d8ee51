using System.Security.Cryptography;
using System.Text;
using Microsoft.ML.SDfp.Numerics.Formats;
using Microsoft.ML.SDfp.Numerics.Layers;
using Microsoft.ML.SDfp.Runtime;
using Microsoft.ML.SDfp.Training.Data;
using Microsoft.ML.SDfp.Training.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.SDfp.Training;

/// <summary>
/// The end-of-epoch state of a <see cref="ImageClassifierTrainer.Fit"/> call in <see cref="TrainingOptions.CheckpointDirectory"/>:
/// everything the following epochs depend on, so that a run resumed from it ends bit-identical to one that was never
/// interrupted.
/// </summary>
/// <remarks>
/// One file, replaced atomically after every epoch (a kill while writing leaves the previous epoch's checkpoint), and
/// sealed with a SHA-256 that is checked before anything is restored. It holds the weights and buffers of the model and
/// its replicas, the optimizer's momentum, the shuffle and augmentation stream, every quantiser's exponent history and
/// rounding stream, the schedule position, early stopping's state and best weights, and the metrics of the finished
/// epochs. A description of the options, the model and the data is stored with it; a resume with anything different
/// is refused, naming the file.
/// </remarks>
internal static class TrainingCheckpoint
{
    /// <summary>The checkpoint's file name inside <see cref="TrainingOptions.CheckpointDirectory"/>.</summary>
    public const string FileName = "sdfp-training.checkpoint";

    private const uint Magic = 0x4B434453; // "SDCK"
    private const int Version = 1;
    private const int HashLength = 32;

    /// <summary>What must agree for a checkpoint to continue this run: the options (but the folder), the model and the data.</summary>
    public static string Describe(TrainingOptions options, nn.Module<Tensor, Tensor> model, ImageDataset train, ImageDataset? validation)
    {
        var text = new StringBuilder();
        text.AppendLine((options with { CheckpointDirectory = null }).ToString());
        text.AppendLine(model is ResNetModel resNet ? resNet.Options.ToString() : model.GetType().FullName);
        foreach (var (name, tensor) in model.state_dict())
            text.AppendLine($"{name} [{string.Join(", ", tensor.shape)}] {tensor.dtype}");
        foreach (var layer in QuantizedLayers(model))
            text.AppendLine($"{layer.LayerName}: {layer.Config}");
        text.AppendLine($"training set: {DescribeData(train)}");
        text.AppendLine($"validation set: {(validation is null ? "none" : DescribeData(validation))}");
        return text.ToString();
    }

    /// <summary>Writes the state <paramref name="writeState"/> writes, sealed, atomically into <paramref name="directory"/>.</summary>
    public static void Save(string directory, string description, Action<BinaryWriter> writeState)
    {
        AtomicFile.Write(Path.Combine(directory, FileName), stream =>
        {
            // Hashed as it is written, so that a large model's checkpoint is not held in memory twice.
            using var sha = SHA256.Create();
            using (var hashing = new CryptoStream(stream, sha, CryptoStreamMode.Write, leaveOpen: true))
            using (var writer = new BinaryWriter(hashing, Encoding.UTF8, leaveOpen: true))
            {
                writer.Write(Magic);
                writer.Write(Version);
                writer.Write(description);
                writeState(writer);
            }
            stream.Write(sha.Hash!);
        });
    }

    /// <summary>
    /// Reads the checkpoint in <paramref name="directory"/> with <paramref name="readState"/>, or returns false when there
    /// is none.
    /// </summary>
    /// <exception cref="InvalidDataException">The checkpoint is damaged or not one; the message names the file.</exception>
    /// <exception cref="ArgumentException">It belongs to a run with other options, model or data; the message names the file and the first difference.</exception>
    public static bool TryRestore(string directory, string description, Action<BinaryReader> readState)
    {
        var path = Path.Combine(directory, FileName);
        if (!File.Exists(path))
            return false;
        var file = File.ReadAllBytes(path);
        if (file.Length < HashLength + 8
            || !SHA256.HashData(file.AsSpan(0, file.Length - HashLength)).AsSpan().SequenceEqual(file.AsSpan(file.Length - HashLength)))
            throw new InvalidDataException($"The training checkpoint '{path}' is damaged (its SHA-256 does not match); delete it to start the run afresh.");

        using var reader = new BinaryReader(new MemoryStream(file, 0, file.Length - HashLength, writable: false), Encoding.UTF8);
        try
        {
            if (reader.ReadUInt32() != Magic)
                throw new InvalidDataException($"'{path}' is not an S-DFP training checkpoint.");
            var version = reader.ReadInt32();
            if (version != Version)
                throw new InvalidDataException($"The training checkpoint '{path}' has version {version}; this library reads version {Version}.");
            var saved = reader.ReadString();
            if (saved != description)
                throw new ArgumentException($"The training checkpoint '{path}' belongs to another run: {FirstDifference(saved, description)}. " +
                    "Resume with the same options, model and data, or use another TrainingOptions.CheckpointDirectory.");
            readState(reader);
            if (reader.BaseStream.Position != reader.BaseStream.Length)
                throw new InvalidDataException($"The training checkpoint '{path}' has bytes after its end.");
            return true;
        }
        catch (EndOfStreamException e)
        {
            throw new InvalidDataException($"The training checkpoint '{path}' is cut short.", e);
        }
    }

    /// <summary>Writes the finished epochs' metrics (without their per-tensor telemetry, which a checkpoint does not keep).</summary>
    public static void WriteMetrics(BinaryWriter writer, IReadOnlyList<EpochMetrics> epochs)
    {
        writer.Write(epochs.Count);
        foreach (var m in epochs)
        {
            writer.Write(m.Epoch);
            writer.Write(m.TrainLoss);
            writer.Write(m.TrainAccuracy);
            WriteOptional(writer, m.ValidationLoss);
            WriteOptional(writer, m.ValidationAccuracy);
            writer.Write(m.LearningRate);
            writer.Write(m.ImagesPerSecond);
            writer.Write(m.Elapsed.Ticks);
            writer.Write(m.SkippedSteps);
            writer.Write(m.TrainingTime.Ticks);
            writer.Write(m.ResidentBytes);
            writer.Write(m.WorstSaturationByRole.Count);
            foreach (var (role, fraction) in m.WorstSaturationByRole)
            {
                writer.Write((int)role);
                writer.Write(fraction);
            }
        }
    }

    /// <summary>Reads what <see cref="WriteMetrics"/> wrote.</summary>
    public static List<EpochMetrics> ReadMetrics(BinaryReader reader, int maxEpochs)
    {
        var count = reader.ReadInt32();
        if (count < 1 || count > maxEpochs)
            throw new InvalidDataException($"The checkpoint records {count} finished epochs; this run has {maxEpochs}.");
        var epochs = new List<EpochMetrics>(count);
        for (var i = 0; i < count; i++)
        {
            var metrics = new EpochMetrics(reader.ReadInt32(), reader.ReadDouble(), reader.ReadDouble(), ReadOptional(reader), ReadOptional(reader),
                reader.ReadDouble(), reader.ReadDouble(), TimeSpan.FromTicks(reader.ReadInt64()), Array.Empty<Numerics.Telemetry.TensorStatistics>())
            {
                SkippedSteps = reader.ReadInt32(),
                TrainingTime = TimeSpan.FromTicks(reader.ReadInt64()),
                ResidentBytes = reader.ReadInt64(),
            };
            var roles = new Dictionary<TensorRole, double>();
            var roleCount = reader.ReadInt32();
            for (var r = 0; r < roleCount; r++)
                roles[(TensorRole)reader.ReadInt32()] = reader.ReadDouble();
            epochs.Add(metrics with { WorstSaturationByRole = roles });
        }
        return epochs;
    }

    /// <summary>Writes a module's tensors in state_dict order, and the state of its quantisers.</summary>
    public static void WriteModel(BinaryWriter writer, nn.Module<Tensor, Tensor> model)
    {
        foreach (var (_, tensor) in model.state_dict())
            WriteTensor(writer, tensor);
        WriteQuantizers(writer, QuantizedLayers(model));
    }

    /// <summary>Writes the state of every quantiser of <paramref name="layers"/>.</summary>
    public static void WriteQuantizers(BinaryWriter writer, IEnumerable<IQuantizedLayer> layers)
    {
        foreach (var layer in layers)
        {
            foreach (var role in Enum.GetValues<TensorRole>())
            {
                var quantizer = layer.Quantizer(role);
                writer.Write(quantizer is not null);
                quantizer?.WriteState(writer);
            }
        }
    }

    /// <summary>Reads what <see cref="WriteModel"/> wrote into the same module, in place.</summary>
    public static void ReadModel(BinaryReader reader, nn.Module<Tensor, Tensor> model)
    {
        foreach (var (name, tensor) in model.state_dict())
            ReadInto(reader, tensor, name);
        ReadQuantizers(reader, QuantizedLayers(model));
    }

    /// <summary>Reads what <see cref="WriteQuantizers"/> wrote into the same layers.</summary>
    public static void ReadQuantizers(BinaryReader reader, IEnumerable<IQuantizedLayer> layers)
    {
        foreach (var layer in layers)
        {
            foreach (var role in Enum.GetValues<TensorRole>())
            {
                var quantizer = layer.Quantizer(role);
                if (reader.ReadBoolean() != quantizer is not null)
                    throw new InvalidDataException($"The checkpoint quantises {layer.LayerName} {role} differently from the model.");
                quantizer?.ReadState(reader);
            }
        }
    }

    /// <summary>A tensor's length-prefixed raw bytes.</summary>
    public static void WriteTensor(BinaryWriter writer, Tensor tensor)
    {
        using var contiguous = tensor.detach().cpu().contiguous();
        var bytes = contiguous.bytes;
        writer.Write(bytes.Length);
        writer.Write(bytes);
    }

    /// <summary>Reads what <see cref="WriteTensor"/> wrote into <paramref name="tensor"/>, in place.</summary>
    public static void ReadInto(BinaryReader reader, Tensor tensor, string name)
    {
        var bytes = reader.ReadBytes(reader.ReadInt32());
        var expected = tensor.numel() * tensor.ElementSize;
        if (bytes.Length != expected)
            throw new InvalidDataException($"The checkpoint holds {bytes.Length} bytes for '{name}', which has {expected}.");
        using var noGrad = no_grad();
        using var saved = empty_like(tensor);
        saved.bytes = bytes;
        tensor.copy_(saved);
    }

    private static void WriteOptional(BinaryWriter writer, double? value)
    {
        writer.Write(value.HasValue);
        writer.Write(value ?? 0);
    }

    private static double? ReadOptional(BinaryReader reader)
    {
        var has = reader.ReadBoolean();
        var value = reader.ReadDouble();
        return has ? value : null;
    }

    private static IEnumerable<IQuantizedLayer> QuantizedLayers(nn.Module<Tensor, Tensor> model) =>
        model is ResNetModel resNet ? resNet.QuantizedLayers : model.modules().OfType<IQuantizedLayer>();

    private static string DescribeData(ImageDataset data)
    {
        using var labels = data.Labels.to_type(ScalarType.Int64).contiguous();
        var hash = Convert.ToHexString(SHA256.HashData(labels.bytes));
        return $"{data.Count} images [{string.Join(", ", data.Images.shape[1..])}], {data.ClassCount} classes, labels SHA-256 {hash}";
    }

    private static string FirstDifference(string saved, string current)
    {
        var a = saved.Split('\n');
        var b = current.Split('\n');
        for (var i = 0; i < Math.Min(a.Length, b.Length); i++)
        {
            if (a[i] != b[i])
                return $"it was written for \"{a[i].Trim()}\", this run has \"{b[i].Trim()}\"";
        }
        return "its description differs in length";
    }
}
