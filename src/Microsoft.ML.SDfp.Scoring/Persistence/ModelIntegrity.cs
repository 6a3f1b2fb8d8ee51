using System.IO.Compression;
using System.IO.Hashing;
using System.Security.Cryptography;

namespace Microsoft.ML.SDfp.Persistence;

/// <summary>
/// The integrity checks of the stage's model files, in one place. Every byte the stage writes sits in a sealed block
/// (magic, length, payload, SHA-256 of the payload) whose hash is verified before any of it is parsed, so a damaged
/// block never reaches a decoder (ours or ML.NET's <c>BinarySaver</c>). <see cref="VerifyArchive(string)"/> additionally checks
/// the .zip's own CRC-32 of every entry, which covers the entries ML.NET writes.
/// </summary>
internal static class ModelIntegrity
{
    /// <summary>Largest sealed block accepted (the weights of ResNet-152 in 16 bits are about 120 MB).</summary>
    public const int MaxBlockLength = 1 << 30;

    public const int HashLength = 32;

    /// <summary>
    /// Throws a <see cref="ModelFileCorruptException"/> naming <paramref name="entry"/> unless <paramref name="condition"/>
    /// holds: <paramref name="what"/> describes a decoded value that no trained model has.
    /// </summary>
    public static void Check(bool condition, string entry, string what)
    {
        if (!condition)
        {
            throw new ModelFileCorruptException(entry, $"{what}, which no trained model has.");
        }
    }

    /// <summary>
    /// Whether <paramref name="ex"/> is a reader's failure on malformed bytes (a bad string length, an early end), which
    /// the caller reports as damage to its entry; our own refusals pass through as they are.
    /// </summary>
    public static bool IsMalformed(Exception ex) =>
        ex is FormatException or ArgumentException || (ex is IOException && ex is not ModelFileCorruptException);

    /// <summary>Writes <paramref name="payload"/> as a sealed block: uint magic, int length, payload, SHA-256.</summary>
    public static void WriteSealed(BinaryWriter writer, uint magic, ReadOnlySpan<byte> payload)
    {
        writer.Write(magic);
        writer.Write(payload.Length);
        writer.Write(payload);
        writer.Write(SHA256.HashData(payload));
    }

    /// <summary>
    /// Reads a sealed block and verifies its SHA-256 before returning the payload. Reads at most
    /// <paramref name="maxLength"/> bytes, so a damaged length can neither allocate nor read without bound.
    /// </summary>
    /// <exception cref="ModelFileCorruptException">Wrong magic, impossible length, truncated, or hash mismatch.</exception>
    public static byte[] ReadSealed(BinaryReader reader, uint magic, string entry, int maxLength = MaxBlockLength)
    {
        try
        {
            uint found = reader.ReadUInt32();
            if (found != magic)
            {
                throw new ModelFileCorruptException(entry, $"does not start with its block marker ({found:X8}, expected {magic:X8}).");
            }

            int length = reader.ReadInt32();
            if (length < 0 || length > maxLength)
            {
                throw new ModelFileCorruptException(entry, $"declares a block of {length} bytes (at most {maxLength} allowed).");
            }

            byte[] payload = ReadExactly(reader, length, entry);
            byte[] hash = ReadExactly(reader, HashLength, entry);
            if (!SHA256.HashData(payload).AsSpan().SequenceEqual(hash))
            {
                throw new ModelFileCorruptException(entry, "fails its SHA-256 check.");
            }

            return payload;
        }
        catch (EndOfStreamException ex)
        {
            throw new ModelFileCorruptException(entry, "is truncated.", ex);
        }
    }

    private static byte[] ReadExactly(BinaryReader reader, int length, string entry)
    {
        byte[] bytes = reader.ReadBytes(length);
        return bytes.Length == length ? bytes : throw new ModelFileCorruptException(entry, $"is truncated ({bytes.Length} of {length} bytes).");
    }

    /// <summary>
    /// Reads every entry of the .zip at <paramref name="path"/> to its end and compares its size and CRC-32 with the
    /// archive's directory. Any change to an entry's stored bytes that alters its CRC-32 (every flip of 1 to 32
    /// consecutive bits does) is reported naming the entry. Reading is bounded by the file: a deflate stream yields at
    /// most about 1,032 bytes per compressed byte, and an entry is abandoned once it exceeds its declared size.
    /// </summary>
    /// <exception cref="ModelFileCorruptException">The archive or one of its entries is damaged.</exception>
    public static void VerifyArchive(string path)
    {
        using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        VerifyArchive(file);
    }

    /// <summary>As <see cref="VerifyArchive(string)"/>, for a seekable stream, which is left open at its start.</summary>
    public static void VerifyArchive(Stream file)
    {
        long start = file.Position;
        ZipArchive archive;
        try
        {
            archive = new ZipArchive(file, ZipArchiveMode.Read, leaveOpen: true);
        }
        catch (InvalidDataException ex)
        {
            throw new ModelFileCorruptException("(central directory)", $"cannot be read, so this is not a complete .zip archive: {ex.Message}", ex);
        }

        using (archive)
        {
            byte[] buffer = new byte[1 << 16];
            foreach (ZipArchiveEntry entry in archive.Entries)
            {
                if (entry.FullName.EndsWith('/'))
                {
                    continue;
                }

                VerifyEntry(entry, buffer);
            }
        }

        file.Position = start;
    }

    private static void VerifyEntry(ZipArchiveEntry entry, byte[] buffer)
    {
        long declared = entry.Length;
        long total = 0;
        var crc = new Crc32();
        try
        {
            using Stream stream = entry.Open();
            int read;
            while ((read = stream.Read(buffer, 0, buffer.Length)) > 0)
            {
                total += read;
                if (total > declared)
                {
                    throw new ModelFileCorruptException(entry.FullName, $"holds more than its declared {declared} bytes.");
                }

                crc.Append(buffer.AsSpan(0, read));
            }
        }
        catch (Exception ex) when (ex is InvalidDataException or NotSupportedException || (ex is IOException && ex is not ModelFileCorruptException))
        {
            throw new ModelFileCorruptException(entry.FullName, $"cannot be decompressed: {ex.Message}", ex);
        }

        if (total != declared)
        {
            throw new ModelFileCorruptException(entry.FullName, $"holds {total} bytes, but the archive declares {declared}.");
        }

        uint actual = crc.GetCurrentHashAsUInt32();
        if (actual != entry.Crc32)
        {
            throw new ModelFileCorruptException(entry.FullName, $"fails its CRC-32 check ({actual:X8}, archive says {entry.Crc32:X8}).");
        }
    }
}
