using System.Security.Cryptography;
using Microsoft.ML.SDfp.Numerics.Formats;
using Microsoft.ML.SDfp.Numerics.Quantization;
using Microsoft.ML.SDfp.Scoring;
using Microsoft.ML.SDfp.Training.Models;
using TorchSharp;
using static TorchSharp.torch;
using RoundingMode = Microsoft.ML.SDfp.Numerics.Formats.RoundingMode;

namespace Microsoft.ML.SDfp.Persistence;

/// <summary>
/// Binary layout of the network inside the model .zip: the quantisation policy, and a weights stream with every
/// state-dict tensor — quantised weights as integers plus one exponent, everything else (batch norm, FP32 layers)
/// as float — followed by a SHA-256 of the stream so a damaged file is reported as such rather than scored.
/// </summary>
internal static class SDfpModelFormat
{
    private const byte KindFloat32 = 0;
    private const byte KindInt8 = 1;
    private const byte KindInt16 = 2;
    private const byte KindInt64 = 3;
    private const int HashLength = 32;

    public static void WritePolicy(BinaryWriter writer, QuantizationPolicy policy)
    {
        writer.Write(policy.QuantizeFirstConv);
        writer.Write(policy.QuantizeLastLinear);
        writer.Write(policy.Layers.Seed);
        WriteFormat(writer, policy.Layers.Weight);
        WriteFormat(writer, policy.Layers.Activation);
        WriteFormat(writer, policy.Layers.Error);
        WriteFormat(writer, policy.Layers.WeightGradient);
    }

    public static QuantizationPolicy ReadPolicy(BinaryReader reader)
    {
        bool firstConv = reader.ReadBoolean();
        bool lastLinear = reader.ReadBoolean();
        long seed = reader.ReadInt64();
        var config = new QuantizationConfig
        {
            Seed = seed,
            Weight = ReadFormat(reader),
            Activation = ReadFormat(reader),
            Error = ReadFormat(reader),
            WeightGradient = ReadFormat(reader),
        };
        var policy = new QuantizationPolicy { Layers = config, QuantizeFirstConv = firstConv, QuantizeLastLinear = lastLinear };
        policy.Validate();
        return policy;
    }

    private static void WriteFormat(BinaryWriter writer, DfpFormat? format)
    {
        writer.Write(format is not null);
        if (format is null)
        {
            return;
        }

        writer.Write(format.Bits);
        writer.Write(format.Shift);
        writer.Write((int)format.Rounding);
        writer.Write((int)format.ExponentSource);
        writer.Write(format.HistoryLength);
        writer.Write(format.AutoShift);
        writer.Write(format.AutoShiftMin);
        writer.Write(format.AutoShiftMax);
        writer.Write(format.MaxSaturatedFraction.HasValue);
        writer.Write(format.MaxSaturatedFraction ?? 0);
    }

    private static DfpFormat? ReadFormat(BinaryReader reader)
    {
        if (!reader.ReadBoolean())
        {
            return null;
        }

        var format = new DfpFormat
        {
            Bits = reader.ReadInt32(),
            Shift = reader.ReadInt32(),
            Rounding = (RoundingMode)reader.ReadInt32(),
            ExponentSource = (ExponentSource)reader.ReadInt32(),
            HistoryLength = reader.ReadInt32(),
            AutoShift = reader.ReadBoolean(),
            AutoShiftMin = reader.ReadInt32(),
            AutoShiftMax = reader.ReadInt32(),
        };
        bool hasCap = reader.ReadBoolean();
        double cap = reader.ReadDouble();
        format = format with { MaxSaturatedFraction = hasCap ? cap : null };
        format.Validate();
        return format;
    }

    /// <summary>
    /// Writes every state-dict tensor of <paramref name="network"/>. With <paramref name="storeAsFp32"/> the quantised
    /// layers are written as FP32 — their master weights when the network kept them, else their grid values — only to
    /// measure what integer storage saves.
    /// </summary>
    public static void WriteWeights(BinaryWriter output, SDfpNetwork network, bool storeAsFp32)
    {
        using var buffer = new MemoryStream();
        using (var writer = new BinaryWriter(buffer, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            var stateDict = network.Model.state_dict();
            writer.Write(stateDict.Count);
            foreach (var (name, tensor) in stateDict)
            {
                writer.Write(name);
                if (!storeAsFp32 && network.FrozenWeights.TryGetValue(name, out DfpTensor? quantized))
                {
                    bool int8 = quantized.Format.Bits <= 8;
                    writer.Write(int8 ? KindInt8 : KindInt16);
                    WriteShape(writer, quantized.Shape);
                    writer.Write(quantized.Format.Bits);
                    writer.Write(quantized.Exponent);
                    if (int8)
                    {
                        writer.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(quantized.ToArray<sbyte>().AsSpan()));
                    }
                    else
                    {
                        writer.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(quantized.ToArray<short>().AsSpan()));
                    }

                    continue;
                }

                if (storeAsFp32 && network.MasterWeights.TryGetValue(name, out float[]? master))
                {
                    writer.Write(KindFloat32);
                    WriteShape(writer, tensor.shape);
                    writer.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(master.AsSpan()));
                    continue;
                }

                using var scope = torch.NewDisposeScope();
                Tensor cpu = tensor.detach().cpu().contiguous();
                if (cpu.dtype == ScalarType.Float32)
                {
                    writer.Write(KindFloat32);
                    WriteShape(writer, cpu.shape);
                    writer.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(cpu.data<float>().ToArray().AsSpan()));
                }
                else if (cpu.dtype == ScalarType.Int64)
                {
                    writer.Write(KindInt64);
                    WriteShape(writer, cpu.shape);
                    writer.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(cpu.data<long>().ToArray().AsSpan()));
                }
                else
                {
                    throw new InvalidOperationException($"Cannot store state-dict tensor '{name}' of dtype {cpu.dtype}.");
                }
            }
        }

        byte[] payload = buffer.ToArray();
        output.Write(payload.LongLength);
        output.Write(payload);
        output.Write(SHA256.HashData(payload));
    }

    /// <summary>
    /// Reads what <see cref="WriteWeights"/> wrote. Throws <see cref="InvalidDataException"/> when the stream is
    /// truncated or its checksum does not match.
    /// </summary>
    public static (Dictionary<string, Tensor> StateDict, Dictionary<string, DfpTensor> Quantized) ReadWeights(BinaryReader input)
    {
        long length = input.ReadInt64();
        if (length < 4 || length > int.MaxValue)
        {
            throw new InvalidDataException($"The S-DFP weights stream declares {length} bytes; the model file is corrupt.");
        }

        byte[] payload = input.ReadBytes((int)length);
        byte[] hash = input.ReadBytes(HashLength);
        if (payload.Length != length || hash.Length != HashLength)
        {
            throw new InvalidDataException($"The S-DFP weights stream is truncated ({payload.Length} of {length} bytes); the model file is corrupt.");
        }

        if (!SHA256.HashData(payload).AsSpan().SequenceEqual(hash))
        {
            throw new InvalidDataException("The S-DFP weights stream fails its SHA-256 check; the model file is corrupt.");
        }

        var stateDict = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var quantized = new Dictionary<string, DfpTensor>(StringComparer.Ordinal);
        using var reader = new BinaryReader(new MemoryStream(payload));
        int count = reader.ReadInt32();
        for (int i = 0; i < count; i++)
        {
            string name = reader.ReadString();
            byte kind = reader.ReadByte();
            long[] shape = ReadShape(reader);
            long elements = shape.Aggregate(1L, (a, b) => a * b);
            switch (kind)
            {
                case KindInt8:
                case KindInt16:
                {
                    int bits = reader.ReadInt32();
                    int exponent = reader.ReadInt32();
                    if (bits is < DfpFormat.MinBits or > DfpFormat.MaxBits || (kind == KindInt8) != (bits <= 8))
                    {
                        throw new InvalidDataException($"Weight '{name}' declares {bits}-bit integers stored as {(kind == KindInt8 ? "int8" : "int16")}; the model file is corrupt.");
                    }

                    // The shift is already folded into the stored exponent, so plain DFP describes the integers.
                    DfpFormat format = DfpFormat.Dfp(bits);
                    DfpTensor weight = kind == KindInt8
                        ? DfpTensor.FromArray(ReadArray<sbyte>(reader, elements), shape, exponent, format)
                        : DfpTensor.FromArray(ReadArray<short>(reader, elements), shape, exponent, format);
                    quantized[name] = weight;
                    stateDict[name] = weight.ToFloat();
                    break;
                }

                case KindFloat32:
                    stateDict[name] = torch.tensor(ReadArray<float>(reader, elements), shape);
                    break;
                case KindInt64:
                    stateDict[name] = torch.tensor(ReadArray<long>(reader, elements), shape);
                    break;
                default:
                    throw new InvalidDataException($"Unknown tensor kind {kind} for '{name}' in the S-DFP weights stream; the model file is corrupt.");
            }
        }

        return (stateDict, quantized);
    }

    private static void WriteShape(BinaryWriter writer, long[] shape)
    {
        writer.Write(shape.Length);
        foreach (long dim in shape)
        {
            writer.Write(dim);
        }
    }

    private static long[] ReadShape(BinaryReader reader)
    {
        int rank = reader.ReadInt32();
        if (rank is < 0 or > 8)
        {
            throw new InvalidDataException($"Tensor rank {rank} in the S-DFP weights stream; the model file is corrupt.");
        }

        var shape = new long[rank];
        for (int d = 0; d < rank; d++)
        {
            shape[d] = reader.ReadInt64();
        }

        return shape;
    }

    private static T[] ReadArray<T>(BinaryReader reader, long count)
        where T : unmanaged
    {
        var values = new T[count];
        Span<byte> bytes = System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan());
        if (reader.Read(bytes) != bytes.Length)
        {
            throw new InvalidDataException("The S-DFP weights stream ends inside a tensor; the model file is corrupt.");
        }

        return values;
    }
}
