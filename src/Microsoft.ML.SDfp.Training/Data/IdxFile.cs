using System.Buffers.Binary;
using System.IO.Compression;

namespace Microsoft.ML.SDfp.Training.Data;

/// <summary>
/// Reader for unsigned-byte IDX files (the MNIST family's format), plain or gzip-compressed.
/// </summary>
/// <remarks>
/// Layout: a 4-byte magic number <c>00 00 08 D</c> (0x08 = unsigned byte, D = number of
/// dimensions), D big-endian int32 sizes, then the bytes in row-major order. Every failure is an
/// <see cref="InvalidDataException"/> whose message starts with the file path, because the usual
/// cause is one bad file among several and the user has to know which.
/// </remarks>
internal static class IdxFile
{
    private const byte UnsignedByteType = 0x08;

    /// <summary>
    /// Reads the header and the first <paramref name="limit"/> items (all when null) of an
    /// unsigned-byte IDX file with <paramref name="dimensionCount"/> dimensions.
    /// </summary>
    /// <returns>The dimension sizes with the first one (the item count) reduced to the number read, and the item bytes.</returns>
    public static (int[] Dimensions, byte[] Data) Read(string path, int dimensionCount, int? limit)
    {
        using var file = File.OpenRead(path);
        bool gzip = file.Length >= 2 && file.ReadByte() == 0x1f && file.ReadByte() == 0x8b;
        file.Position = 0;
        using Stream stream = gzip ? new GZipStream(file, CompressionMode.Decompress) : file;
        try
        {
            return ReadFrom(stream, path, dimensionCount, limit);
        }
        catch (InvalidDataException ex) when (!ex.Message.StartsWith(path, StringComparison.Ordinal))
        {
            // GZipStream's own message ("unsupported compression method", ...) does not say which file.
            throw new InvalidDataException($"{path}: the gzip stream is corrupt ({ex.Message}).", ex);
        }
    }

    private static (int[] Dimensions, byte[] Data) ReadFrom(Stream stream, string path, int dimensionCount, int? limit)
    {
        int expectedMagic = (UnsignedByteType << 8) | dimensionCount;
        Span<byte> magicBytes = stackalloc byte[4];
        if (ReadFully(stream, magicBytes) < 4)
            throw new InvalidDataException($"{path}: truncated: the file ends before the 4-byte IDX magic number.");
        int magic = BinaryPrimitives.ReadInt32BigEndian(magicBytes);
        if (magic != expectedMagic)
        {
            throw new InvalidDataException(
                $"{path}: bad IDX magic number 0x{magic:X8}; expected 0x{expectedMagic:X8} " +
                $"(unsigned bytes, {dimensionCount} dimension{(dimensionCount == 1 ? "" : "s")}).");
        }

        Span<byte> sizeBytes = stackalloc byte[4 * dimensionCount];
        if (ReadFully(stream, sizeBytes) < sizeBytes.Length)
            throw new InvalidDataException($"{path}: truncated: the file ends inside the header's {dimensionCount} dimension sizes.");
        var dims = new int[dimensionCount];
        long itemSize = 1;
        for (int i = 0; i < dimensionCount; i++)
        {
            dims[i] = BinaryPrimitives.ReadInt32BigEndian(sizeBytes.Slice(4 * i, 4));
            if (dims[i] < 0 || (i > 0 && dims[i] == 0))
                throw new InvalidDataException($"{path}: dimension {i} has invalid size {dims[i]}.");
            if (i > 0)
                itemSize *= dims[i];
        }

        int declared = dims[0];
        int count = limit is { } l ? Math.Min(l, declared) : declared;
        long byteCount = count * itemSize;
        if (byteCount > Array.MaxLength)
            throw new InvalidDataException($"{path}: {count} items of {itemSize} bytes do not fit in one array.");
        var data = GC.AllocateUninitializedArray<byte>((int)byteCount);
        int read = ReadFully(stream, data);
        if (read < data.Length)
        {
            throw new InvalidDataException(
                $"{path}: truncated: the header declares {declared} items of {itemSize} bytes, " +
                $"but the data ends after {read / itemSize} complete items ({read} of the {byteCount} bytes needed).");
        }

        // With no limit the whole file was meant to be consumed; extra bytes mean a wrong header.
        if (limit is null && stream.ReadByte() != -1)
            throw new InvalidDataException($"{path}: the file holds more data than the {declared} items its header declares.");

        dims[0] = count;
        return (dims, data);
    }

    private static int ReadFully(Stream stream, Span<byte> buffer)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            int n = stream.Read(buffer[total..]);
            if (n == 0)
                break;
            total += n;
        }
        return total;
    }
}
