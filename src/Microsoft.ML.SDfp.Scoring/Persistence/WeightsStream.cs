using System.Runtime.InteropServices;
using System.Security.Cryptography;
using static Microsoft.ML.SDfp.Persistence.ModelIntegrity;

namespace Microsoft.ML.SDfp.Persistence;

/// <summary>
/// Reads the model file's weights stream without TorchSharp: a length-prefixed payload of every state-dict tensor
/// (quantised weights as integers plus one exponent, everything else as float or int64) followed by its SHA-256.
/// The training package writes it; both the TorchSharp and the ONNX Runtime loaders read it here, so there is one
/// reader of the layout.
/// </summary>
internal static class WeightsStream
{
    /// <summary>The stream's payload: every tensor of <paramref name="tensors"/>, in state-dict order.</summary>
    public static byte[] Payload(IEnumerable<StoredTensor> tensors)
    {
        using var buffer = new MemoryStream();
        using (var writer = new BinaryWriter(buffer, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            IReadOnlyList<StoredTensor> list = tensors.ToList();
            writer.Write(list.Count);
            foreach (StoredTensor tensor in list)
            {
                writer.Write(tensor.Name);
                writer.Write((byte)tensor.Kind);
                writer.Write(tensor.Shape.Length);
                foreach (long dim in tensor.Shape)
                {
                    writer.Write(dim);
                }

                switch (tensor.Kind)
                {
                    case StoredTensorKind.Int8:
                        writer.Write(tensor.Bits);
                        writer.Write(tensor.Exponent);
                        writer.Write(MemoryMarshal.AsBytes(tensor.Int8.AsSpan()));
                        break;
                    case StoredTensorKind.Int16:
                        writer.Write(tensor.Bits);
                        writer.Write(tensor.Exponent);
                        writer.Write(MemoryMarshal.AsBytes(tensor.Int16.AsSpan()));
                        break;
                    case StoredTensorKind.Float32:
                        writer.Write(MemoryMarshal.AsBytes(tensor.Float32.AsSpan()));
                        break;
                    default:
                        writer.Write(MemoryMarshal.AsBytes(tensor.Int64.AsSpan()));
                        break;
                }
            }
        }

        return buffer.ToArray();
    }

    /// <summary>Writes the stream: long length, <paramref name="payload"/>, SHA-256 of the payload.</summary>
    public static void Write(BinaryWriter output, byte[] payload)
    {
        output.Write(payload.LongLength);
        output.Write(payload);
        output.Write(SHA256.HashData(payload));
    }

    /// <summary>
    /// Reads every tensor, in stored (state-dict) order, verifying the SHA-256 before parsing and, for files since format
    /// 0x00010002, that it is the hash the classifier's header recorded (<paramref name="expectedHash"/>). Every decoded
    /// value is range-checked; any failure is a <see cref="ModelFileCorruptException"/> naming <paramref name="entry"/>.
    /// </summary>
    public static IReadOnlyList<StoredTensor> Read(BinaryReader input, string entry, ReadOnlySpan<byte> expectedHash)
    {
        byte[] payload;
        try
        {
            long length = input.ReadInt64();
            if (length < 4 || length > MaxBlockLength)
            {
                throw new ModelFileCorruptException(entry, $"declares {length} bytes of weights.");
            }

            payload = input.ReadBytes((int)length);
            byte[] hash = input.ReadBytes(HashLength);
            if (payload.Length != length || hash.Length != HashLength)
            {
                throw new ModelFileCorruptException(entry, $"is truncated ({payload.Length} of {length} bytes).");
            }

            if (!SHA256.HashData(payload).AsSpan().SequenceEqual(hash))
            {
                throw new ModelFileCorruptException(entry, "fails its SHA-256 check.");
            }

            if (!expectedHash.IsEmpty && !expectedHash.SequenceEqual(hash))
            {
                throw new ModelFileCorruptException(entry, "is intact but is not the weights stream this classifier's header recorded (entries from different models).");
            }
        }
        catch (EndOfStreamException ex)
        {
            throw new ModelFileCorruptException(entry, "is truncated.", ex);
        }

        try
        {
            return ReadTensors(payload, entry);
        }
        catch (Exception ex) when (IsMalformed(ex))
        {
            throw new ModelFileCorruptException(entry, $"cannot be parsed: {ex.Message}", ex);
        }
    }

    private static List<StoredTensor> ReadTensors(byte[] payload, string entry)
    {
        using var reader = new BinaryReader(new MemoryStream(payload, writable: false));
        int count = reader.ReadInt32();
        Check(count is >= 1 and <= 100_000, entry, $"declares {count} tensors");
        var tensors = new List<StoredTensor>(count);
        for (int i = 0; i < count; i++)
        {
            string name = reader.ReadString();
            var kind = (StoredTensorKind)reader.ReadByte();
            long[] shape = ReadShape(reader, entry);
            // Saturates at 2^40 so that a damaged shape cannot overflow the size checks below.
            long elements = shape.Aggregate(1L, (a, b) => a == 0 || b == 0 ? 0 : a > (1L << 40) / b ? 1L << 40 : a * b);
            long remaining = reader.BaseStream.Length - reader.BaseStream.Position;
            switch (kind)
            {
                case StoredTensorKind.Int8:
                case StoredTensorKind.Int16:
                    tensors.Add(ReadQuantized(reader, name, kind, shape, elements, remaining, entry));
                    break;
                case StoredTensorKind.Float32:
                    Check(elements * sizeof(float) <= remaining, entry, $"declares {elements} elements for '{name}', past its end");
                    float[] values = ReadArray<float>(reader, elements);
                    Check(Array.TrueForAll(values, float.IsFinite), entry, $"stores non-finite values in '{name}'");
                    tensors.Add(new StoredTensor(name, kind, shape, float32: values));
                    break;
                case StoredTensorKind.Int64:
                    Check(elements * sizeof(long) <= remaining, entry, $"declares {elements} elements for '{name}', past its end");
                    tensors.Add(new StoredTensor(name, kind, shape, int64: ReadArray<long>(reader, elements)));
                    break;
                default:
                    throw new ModelFileCorruptException(entry, $"has unknown tensor kind {(byte)kind} for '{name}'.");
            }
        }

        Check(reader.BaseStream.Position == payload.Length, entry, "has bytes after its last tensor");
        return tensors;
    }

    private static StoredTensor ReadQuantized(BinaryReader reader, string name, StoredTensorKind kind, long[] shape, long elements, long remaining, string entry)
    {
        int bits = reader.ReadInt32();
        int exponent = reader.ReadInt32();
        Check(kind == StoredTensorKind.Int8 ? bits is >= 2 and <= 8 : bits is > 8 and <= 16, entry, $"stores '{name}' with {bits} bits in kind {kind}");
        Check(exponent is >= ClassifierHeader.MinExponent and <= ClassifierHeader.MaxExponent, entry, $"stores '{name}' with exponent {exponent}");
        Check(elements * (kind == StoredTensorKind.Int8 ? 1 : 2) <= remaining, entry, $"declares {elements} elements for '{name}', past its end");
        int max = (1 << (bits - 1)) - 1, min = -(1 << (bits - 1));
        if (kind == StoredTensorKind.Int8)
        {
            sbyte[] values = ReadArray<sbyte>(reader, elements);
            Check(Array.TrueForAll(values, v => v >= min && v <= max), entry, $"stores integers outside {bits} bits in '{name}'");
            return new StoredTensor(name, kind, shape, bits, exponent, int8: values);
        }
        else
        {
            short[] values = ReadArray<short>(reader, elements);
            Check(Array.TrueForAll(values, v => v >= min && v <= max), entry, $"stores integers outside {bits} bits in '{name}'");
            return new StoredTensor(name, kind, shape, bits, exponent, int16: values);
        }
    }

    private static long[] ReadShape(BinaryReader reader, string entry)
    {
        int rank = reader.ReadInt32();
        Check(rank is >= 0 and <= 8, entry, $"has a tensor of rank {rank}");
        var shape = new long[rank];
        for (int d = 0; d < rank; d++)
        {
            shape[d] = reader.ReadInt64();
            Check(shape[d] is >= 0 and <= int.MaxValue, entry, $"has a tensor dimension of {shape[d]}");
        }

        return shape;
    }

    private static T[] ReadArray<T>(BinaryReader reader, long count)
        where T : unmanaged
    {
        var values = new T[count];
        Span<byte> bytes = MemoryMarshal.AsBytes(values.AsSpan());
        if (reader.Read(bytes) != bytes.Length)
        {
            throw new EndOfStreamException("The S-DFP weights stream ends inside a tensor.");
        }

        return values;
    }
}
