using System.IO.Compression;
using Microsoft.ML.Data;
using Microsoft.ML.SDfp.Persistence;

namespace Microsoft.ML.SDfp.Tests;

/// <summary>
/// Flips bits across a saved model and loads each damaged copy. Every load must end within <see cref="LoadLimit"/>:
/// with the stage's own error naming the damaged entry, or (for bytes the checks do not cover, such as zip
/// timestamps) with a model that scores finite values.
/// </summary>
[Collection(TrainedModelCollection.Name)]
public sealed class ModelFuzzTests(TrainedModelFixture fixture, Xunit.Abstractions.ITestOutputHelper output) : IDisposable
{
    private static readonly TimeSpan LoadLimit = TimeSpan.FromSeconds(20);
    private readonly string _dir = Directory.CreateTempSubdirectory("sdfp-fuzz-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Every_16th_byte_of_the_zip_flipped_fails_the_checked_load_naming_the_file_and_the_entry_or_scores_finite_values(bool onnxRuntime)
    {
        int namedEntry = 0;
        Func<MLContext, string, ITransformer> load = onnxRuntime
            ? (ml, path) => ml.Model.LoadWithOnnxRuntime(path, out _)
            : (ml, path) => ml.Model.LoadChecked(path, out _);
        var (size, failed, loaded) = FlipEvery16thByte(load, (offset, path, error) =>
        {
            Assert.True(error is InvalidDataException && error.Message.Contains(path, StringComparison.Ordinal),
                $"byte {offset}: not the stage's error: {error}");
            namedEntry += error.InnerException is ModelFileCorruptException ? 1 : 0;
        });

        output.WriteLine($"{(onnxRuntime ? "LoadWithOnnxRuntime" : "LoadChecked")}: {size} bytes, {failed + loaded} flips: {failed} refused " +
            $"({namedEntry} naming an entry), {loaded} loaded and scored finite values");
        Assert.True(namedEntry > failed / 2, "most flips land in entry data and must be reported against their entry");
    }

    /// <summary>
    /// Saves the fixture's model, flips one bit in every 16th byte (sparser inside the weights' compressed data) and loads
    /// each damaged copy with <paramref name="load"/>: a load that works must score finite values, a refusal goes to
    /// <paramref name="refused"/> (byte offset, file, error).
    /// </summary>
    private (int Size, int Failed, int Loaded) FlipEvery16thByte(Func<MLContext, string, ITransformer> load, Action<int, string, Exception> refused)
    {
        string original = Path.Combine(_dir, "model.zip");
        fixture.Ml.Model.SaveAtomically(fixture.Model, fixture.TrainData.Schema, original);
        byte[] bytes = File.ReadAllBytes(original);
        string path = Path.Combine(_dir, "damaged.zip");
        var ml = new MLContext(seed: 1);
        IDataView rows = ml.Data.TakeRows(fixture.TestData, 2);
        (int weightsStart, int weightsEnd) = CompressedRange(bytes, "SDfpWeights");
        int failed = 0, loaded = 0;
        for (int offset = 0; offset < bytes.Length; offset += Stride(offset, weightsStart, weightsEnd))
        {
            byte[] damaged = (byte[])bytes.Clone();
            damaged[offset] ^= (byte)(1 << (offset / 16 % 8));
            File.WriteAllBytes(path, damaged);
            Exception? error = LoadAndScore(() => load(ml, path), ml, rows, $"byte {offset}");
            if (error is null)
            {
                loaded++;
                continue;
            }

            failed++;
            refused(offset, path, error);
        }

        return (bytes.Length, failed, loaded);
    }

    [Theory]
    [InlineData("Model.key", false)]
    [InlineData("SDfpWeights", false)]
    [InlineData("Model.key", true)]
    [InlineData("SDfpWeights", true)]
    public void Flips_inside_the_classifiers_entries_with_a_valid_zip_CRC_fail_Model_Load_naming_the_entry(string name, bool onnxRuntime)
    {
        // The .zip is rebuilt after each flip, so its CRC-32 matches: only the stage's own checks can catch these.
        using var saved = new MemoryStream();
        fixture.Ml.Model.Save(fixture.Model, fixture.TrainData.Schema, saved);
        Dictionary<string, byte[]> entries = ReadEntries(saved.ToArray());
        string entryName = entries.Keys.Single(k => k.EndsWith("/" + name, StringComparison.Ordinal)
            && entries.ContainsKey(k[..k.LastIndexOf('/')] + "/SDfpWeights"));
        byte[] content = entries[entryName];
        (int start, int end) = OwnedRange(name, content);
        var ml = new MLContext(seed: 1);
        IDataView rows = ml.Data.TakeRows(fixture.TestData, 2);
        int refused = 0, other = 0, loaded = 0;
        foreach (int offset in Offsets(start, end))
        {
            byte[] damaged = (byte[])content.Clone();
            damaged[offset] ^= (byte)(1 << (offset / 16 % 8));
            byte[] zip = WriteEntries(entries, entryName, damaged);
            Exception? error = LoadAndScore(() => Load(ml, zip, onnxRuntime), ml, rows, $"{entryName} byte {offset}");
            ModelFileCorruptException? corrupt = Flatten(error).OfType<ModelFileCorruptException>().FirstOrDefault();
            if (offset >= start && offset < end)
            {
                Assert.True(corrupt is not null, $"{entryName} byte {offset}: expected the stage's corruption error, got {error?.ToString() ?? "a loaded model"}");
                Assert.Equal(entryName, corrupt.Entry);
                refused++;
            }
            else
            {
                // ML.NET's own header around our block: the load must still end, with any error or a working model.
                _ = error is null ? loaded++ : other++;
            }
        }

        output.WriteLine($"{(onnxRuntime ? "ONNX Runtime" : "TorchSharp")} {entryName}: {content.Length} bytes, stage's block [{start}, {end}): {refused} flips refused naming the entry; " +
            $"ML.NET header flips: {other} refused, {loaded} loaded and scored finite values");
        Assert.True(refused > 0);
    }

    [Theory]
    [InlineData("height", "input size", false)]
    [InlineData("classes", "classes", false)]
    [InlineData("exponent", "activation exponent", false)]
    [InlineData("std", "standard deviation", false)]
    [InlineData("height", "input size", true)]
    [InlineData("classes", "classes", true)]
    [InlineData("exponent", "activation exponent", true)]
    [InlineData("std", "standard deviation", true)]
    public void A_well_sealed_header_with_values_no_trained_model_has_is_refused_naming_the_value(string field, string expected, bool onnxRuntime)
    {
        // Re-sealed with a valid SHA-256, as a hand-made file would be: only the range checks can refuse it.
        using var saved = new MemoryStream();
        fixture.Ml.Model.Save(fixture.Model, fixture.TrainData.Schema, saved);
        Dictionary<string, byte[]> entries = ReadEntries(saved.ToArray());
        string entryName = entries.Keys.Single(k => k.EndsWith("/Model.key", StringComparison.Ordinal)
            && entries.ContainsKey(k[..k.LastIndexOf('/')] + "/SDfpWeights"));
        byte[] content = entries[entryName];
        (int start, int end) = OwnedRange("Model.key", content);
        ClassifierHeader header = ClassifierHeader.FromBytes(content.AsSpan(start + 8, end - start - 8 - ModelIntegrity.HashLength).ToArray(), entryName);
        header = field switch
        {
            "height" => header with { InputShape = header.InputShape with { Height = 65564 } },
            "classes" => header with { Classes = 1 },
            "exponent" => header with { Exponents = header.Exponents.ToDictionary(kv => kv.Key, kv => 300) },
            _ => header with { Std = header.Std.Select(_ => -1f).ToArray() },
        };
        using var block = new MemoryStream();
        using (var writer = new BinaryWriter(block, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            ModelIntegrity.WriteSealed(writer, ClassifierHeader.Magic, header.ToBytes());
        }

        byte[] damaged = [.. content.AsSpan(0, start), .. block.ToArray(), .. content.AsSpan(end)];
        byte[] zip = WriteEntries(entries, entryName, damaged);
        var ex = Assert.ThrowsAny<Exception>(() => Load(new MLContext(), zip, onnxRuntime));
        ModelFileCorruptException corrupt = Flatten(ex).OfType<ModelFileCorruptException>().Single();
        Assert.Equal(entryName, corrupt.Entry);
        Assert.Contains(expected, corrupt.Message, StringComparison.Ordinal);
    }

    // The two routes share the reader, so both must refuse what it refuses.
    private static ITransformer Load(MLContext ml, byte[] zip, bool onnxRuntime) =>
        onnxRuntime ? ml.Model.LoadWithOnnxRuntime(new MemoryStream(zip), out _) : ml.Model.Load(new MemoryStream(zip), out _);

    /// <summary>Loads with <paramref name="load"/> on a worker, bounded by <see cref="LoadLimit"/>; scores when it loads.</summary>
    private static Exception? LoadAndScore(Func<ITransformer> load, MLContext ml, IDataView rows, string what)
    {
        var task = Task.Run(() =>
        {
            ITransformer model = load();
            try
            {
                foreach (var prediction in ml.Data.CreateEnumerable<ImagePrediction>(model.Transform(rows), reuseRowObject: false))
                {
                    Assert.True(prediction.Score!.All(float.IsFinite), $"{what}: loaded, but scored non-finite values");
                }
            }
            finally
            {
                (model as IEnumerable<ITransformer>)?.OfType<IDisposable>().ToList().ForEach(d => d.Dispose());
            }
        });
        Task.WhenAny(task, Task.Delay(LoadLimit)).Wait();
        Assert.True(task.IsCompleted, $"{what}: the load did not end within {LoadLimit.TotalSeconds} s");
        return task.Exception?.InnerException;
    }

    // Every 16th byte, except inside the weights' compressed data past its first 4 KiB: there every 512th byte, to keep
    // the test within a minute on a shared machine. Any change there fails the same CRC-32 and SHA-256 checks.
    private static int Stride(int offset, int start, int end) => offset >= start + 4096 && offset < end - 4096 ? 512 : 16;

    private static (int Start, int End) CompressedRange(byte[] zip, string suffix)
    {
        using var archive = new ZipArchive(new MemoryStream(zip), ZipArchiveMode.Read);
        ZipArchiveEntry entry = archive.Entries.Single(e => e.FullName.EndsWith(suffix, StringComparison.Ordinal));
        byte[] name = System.Text.Encoding.ASCII.GetBytes(entry.FullName);
        for (int at = 0; at + 30 < zip.Length; at++)
        {
            // Local file header: signature, ..., name length at 26, extra length at 28, name at 30.
            if (BitConverter.ToUInt32(zip, at) == 0x04034B50 && zip.AsSpan(at + 30).StartsWith(name))
            {
                int start = at + 30 + BitConverter.ToUInt16(zip, at + 26) + BitConverter.ToUInt16(zip, at + 28);
                return (start, start + (int)entry.CompressedLength);
            }
        }

        throw new InvalidOperationException($"no local header for {entry.FullName}");
    }

    // Every 16th byte of the stage's block and of the ML.NET header around it. The weights stream's tensor data is one
    // SHA-256-covered block: past its first 4 KiB (count, names, shapes, bit widths) it is sampled every 1024th byte
    // to keep the test under a minute; the hash check does not depend on where the flip is.
    private static IEnumerable<int> Offsets(int start, int end)
    {
        for (int offset = 0; offset < end + 64; offset += offset < start + 4096 || offset >= end - 64 ? 16 : 1024)
        {
            yield return offset;
        }
    }

    private static (int Start, int End) OwnedRange(string name, byte[] content)
    {
        if (name == "SDfpWeights")
        {
            return (0, content.Length);
        }

        byte[] magic = BitConverter.GetBytes(ClassifierHeader.Magic);
        int at = content.AsSpan().IndexOf(magic);
        Assert.True(at > 0, "the classifier's sealed block was not found in Model.key");
        return (at, at + 8 + BitConverter.ToInt32(content, at + 4) + ModelIntegrity.HashLength);
    }

    private static Dictionary<string, byte[]> ReadEntries(byte[] zip)
    {
        using var archive = new ZipArchive(new MemoryStream(zip), ZipArchiveMode.Read);
        return archive.Entries.Where(e => !e.FullName.EndsWith('/')).ToDictionary(e => e.FullName, e =>
        {
            using var stream = e.Open();
            using var buffer = new MemoryStream();
            stream.CopyTo(buffer);
            return buffer.ToArray();
        });
    }

    private static byte[] WriteEntries(Dictionary<string, byte[]> entries, string replaced, byte[] content)
    {
        using var buffer = new MemoryStream();
        using (var archive = new ZipArchive(buffer, ZipArchiveMode.Create, leaveOpen: true))
        {
            foreach (var (name, data) in entries)
            {
                using Stream stream = archive.CreateEntry(name, CompressionLevel.NoCompression).Open();
                stream.Write(name == replaced ? content : data);
            }
        }

        return buffer.ToArray();
    }

    private static IEnumerable<Exception> Flatten(Exception? ex)
    {
        for (Exception? e = ex; e is not null; e = e.InnerException)
        {
            yield return e;
        }
    }
}
