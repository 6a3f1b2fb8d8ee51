using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace Microsoft.ML.SDfp.Persistence;

/// <summary>
/// Reads the model file's weights stream without TorchSharp: a length-prefixed payload of every state-dict tensor
/// (quantised weights as integers plus one exponent, everything else as float or int64) followed by its SHA-256.
/// The training package writes it; both the TorchSharp and the ONNX Runtime loaders read it here, so there is one
/// reader of the layout.
/// </summary>
internal static class WeightsStream
{
    private const int HashLength = 32;

    /// <summary>Writes <paramref name="tensors"/> (state-dict order) and the SHA-256 of what it wrote.</summary>
    public static void Write(BinaryWriter output, IEnumerable<StoredTensor> tensors)
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

        byte[] payload = buffer.ToArray();
        output.Write(payload.LongLength);
        output.Write(payload);
        output.Write(SHA256.HashData(payload));
    }

    /// <summary>
    /// Reads every tensor, in stored (state-dict) order. Throws <see cref="InvalidDataException"/> when the stream is
    /// truncated, its checksum does not match, or a tensor is malformed.
    /// </summary>
    public static IReadOnlyList<StoredTensor> Read(BinaryReader input)
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

        using var reader = new BinaryReader(new MemoryStream(payload));
        int count = reader.ReadInt32();
        if (count < 0 || count > 100_000)
        {
            throw new InvalidDataException($"The S-DFP weights stream declares {count} tensors; the model file is corrupt.");
        }

        var tensors = new List<StoredTensor>(count);
        for (int i = 0; i < count; i++)
        {
            string name = reader.ReadString();
            var kind = (StoredTensorKind)reader.ReadByte();
            long[] shape = ReadShape(reader);
            long elements = shape.Aggregate(1L, (a, b) => a * b);
            if (elements < 0 || elements > payload.Length)
            {
                throw new InvalidDataException($"Tensor '{name}' declares {elements} elements; the model file is corrupt.");
            }

            tensors.Add(kind switch
            {
                StoredTensorKind.Int8 or StoredTensorKind.Int16 => ReadQuantized(reader, name, kind, shape, elements),
                StoredTensorKind.Float32 => new StoredTensor(name, kind, shape, float32: ReadArray<float>(reader, elements)),
                StoredTensorKind.Int64 => new StoredTensor(name, kind, shape, int64: ReadArray<long>(reader, elements)),
                _ => throw new InvalidDataException($"Unknown tensor kind {(byte)kind} for '{name}' in the S-DFP weights stream; the model file is corrupt."),
            });
        }

        return tensors;
    }

    private static StoredTensor ReadQuantized(BinaryReader reader, string name, StoredTensorKind kind, long[] shape, long elements)
    {
        int bits = reader.ReadInt32();
        int exponent = reader.ReadInt32();
        int maxBits = kind == StoredTensorKind.Int8 ? 8 : 16;
        if (bits < 2 || bits > maxBits || exponent is < -200 or > 200)
        {
            throw new InvalidDataException($"Quantised tensor '{name}' declares {bits} bits and exponent {exponent}; the model file is corrupt.");
        }

        return kind == StoredTensorKind.Int8
            ? new StoredTensor(name, kind, shape, bits, exponent, int8: ReadArray<sbyte>(reader, elements))
            : new StoredTensor(name, kind, shape, bits, exponent, int16: ReadArray<short>(reader, elements));
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
            if (shape[d] < 0)
            {
                throw new InvalidDataException($"Tensor dimension {shape[d]} in the S-DFP weights stream; the model file is corrupt.");
            }
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
            throw new InvalidDataException("The S-DFP weights stream ends inside a tensor; the model file is corrupt.");
        }

        return values;
    }
}
