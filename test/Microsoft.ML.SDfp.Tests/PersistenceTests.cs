using System.Diagnostics;
using System.Globalization;
using System.IO.Compression;
using System.Reflection;
using Microsoft.ML.Data;
using Microsoft.ML.SDfp.Numerics.Formats;
using Microsoft.ML.SDfp.Numerics.Quantization;
using Microsoft.ML.SDfp.Scoring;

namespace Microsoft.ML.SDfp.Tests;

/// <summary>Saving to and loading from .zip: bit-identity across processes, size, atomic save, and damaged files.</summary>
[Collection(TrainedModelCollection.Name)]
public sealed class PersistenceTests(TrainedModelFixture fixture, Xunit.Abstractions.ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sdfp-persistence-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string SaveModel(string name = "model.zip")
    {
        string path = Path.Combine(_dir, name);
        fixture.Ml.Model.SaveAtomically(fixture.Model, fixture.TrainData.Schema, path);
        return path;
    }

    [Fact]
    public void A_fresh_process_with_a_fresh_MLContext_loads_the_zip_and_scores_bit_identically()
    {
        string path = SaveModel();
        List<float[]> expected = TrainedModelFixture.Scores(fixture.Ml, fixture.Model, fixture.TestData);

        string helper = typeof(PersistenceTests).Assembly.GetCustomAttribute<ScoringHelperPathAttribute>()!.Path;
        Assert.True(File.Exists(helper), $"scoring helper not built at {helper}");
        var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(helper);
        start.ArgumentList.Add(path);
        foreach (ImageRow row in fixture.TestRows)
        {
            start.ArgumentList.Add(row.ImagePath);
        }

        using Process process = Process.Start(start)!;
        string stdout = process.StandardOutput.ReadToEnd();
        string stderr = process.StandardError.ReadToEnd();
        Assert.True(process.WaitForExit(180_000), "scoring helper timed out");
        Assert.True(process.ExitCode == 0, $"scoring helper failed ({process.ExitCode}): {stderr}");

        string[] lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(fixture.TestRows.Count, lines.Length);
        for (int i = 0; i < lines.Length; i++)
        {
            string[] fields = lines[i].Split('\t');
            Assert.Equal(fixture.TestRows[i].ImagePath, fields[0]);
            int[] bits = fields[2].Split(',').Select(h => int.Parse(h, NumberStyles.HexNumber, CultureInfo.InvariantCulture)).ToArray();
            Assert.Equal(expected[i].Select(BitConverter.SingleToInt32Bits), bits);
        }
    }

    [Fact]
    public void Reloaded_model_scores_bit_identically_in_process_and_keeps_the_trained_number_format()
    {
        string path = SaveModel();
        var ml = new MLContext(seed: 7);
        ITransformer loaded = ml.Model.Load(path, out _);
        List<float[]> before = TrainedModelFixture.Scores(fixture.Ml, fixture.Model, fixture.TestData);
        List<float[]> after = TrainedModelFixture.Scores(ml, loaded, ml.Data.LoadFromEnumerable(fixture.TestRows));
        Assert.Equal(before.Count, after.Count);
        for (int i = 0; i < before.Count; i++)
        {
            Assert.Equal(before[i].Select(BitConverter.SingleToInt32Bits), after[i].Select(BitConverter.SingleToInt32Bits));
        }

        var classifier = ((TransformerChain<ITransformer>)loaded).OfType<SDfpImageClassificationTransformer>().Single();
        Assert.Equal(fixture.Classifier.NumberFormat, classifier.NumberFormat);
        Assert.Contains("S-DFP8", classifier.NumberFormat);
        Assert.Equal(fixture.Classifier.ClassNames, classifier.ClassNames);
        Assert.Equal(fixture.Classifier.Network.ActivationExponents, classifier.Network.ActivationExponents);
        Assert.NotEmpty(classifier.Network.ActivationExponents);
    }

    [Fact]
    public void Stored_weights_are_the_exact_grid_values_so_requantising_them_gives_the_same_integers()
    {
        SDfpNetwork network = fixture.Classifier.Network;
        Assert.NotEmpty(network.FrozenWeights);
        foreach (var (name, stored) in network.FrozenWeights)
        {
            using var weight = network.Model.state_dict()[name].detach().clone();
            using var grid = stored.ToFloat();
            Assert.Equal(grid.data<float>().ToArray(), weight.data<float>().ToArray());
            // DFP weights (shift 0) re-quantise to the very same integers and exponent.
            var format = Numerics.Formats.DfpFormat.Dfp(stored.Format.Bits);
            using var again = Numerics.Quantization.Dfp.Quantize(weight, format);
            Assert.Equal(stored.Exponent, again.Exponent);
            Assert.Equal(stored.ToArray<sbyte>(), again.ToArray<sbyte>());
        }
    }

    [Fact]
    public void Quantised_zip_is_at_most_three_tenths_of_the_same_model_stored_in_fp32()
    {
        string quantised = SaveModel("int8.zip");
        fixture.Classifier.StoreWeightsAsFp32 = true;
        string fp32;
        try
        {
            fp32 = SaveModel("fp32.zip");
        }
        finally
        {
            fixture.Classifier.StoreWeightsAsFp32 = false;
        }

        long q = new FileInfo(quantised).Length, f = new FileInfo(fp32).Length;
        double ratio = (double)q / f;
        output.WriteLine($"model.zip {q} bytes (int8 weights) vs {f} bytes (FP32 weights): ratio {ratio:F3}");
        Assert.True(ratio <= 0.3, $"ratio {ratio:F3} ({q} / {f} bytes)");

        // The FP32 file holds the trained master weights; loading it quantises them again, to the very same integers.
        var ml = new MLContext();
        var a = TrainedModelFixture.Scores(ml, ml.Model.Load(quantised, out _), ml.Data.LoadFromEnumerable(fixture.TestRows.Take(8)));
        var b = TrainedModelFixture.Scores(ml, ml.Model.Load(fp32, out _), ml.Data.LoadFromEnumerable(fixture.TestRows.Take(8)));
        Assert.Equal(a, b);
    }

    [Fact]
    public void SaveAtomically_leaves_the_earlier_file_intact_when_saving_fails_midway()
    {
        string path = SaveModel();
        byte[] before = File.ReadAllBytes(path);

        // A transformer whose Save throws halfway through writing the zip stands in for a crash mid-save.
        var failing = new TransformerChain<ITransformer>(fixture.Model.Append<ITransformer>(new ThrowingTransformer()).ToArray());
        Assert.ThrowsAny<Exception>(() => fixture.Ml.Model.SaveAtomically(failing, fixture.TrainData.Schema, path));

        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Single(Directory.GetFiles(_dir));
        Assert.NotNull(fixture.Ml.Model.LoadChecked(path, out _));
    }

    [Fact]
    public void MLNets_own_Save_truncates_the_earlier_file_when_saving_fails_midway()
    {
        // Documents why SaveAtomically exists: Model.Save(model, schema, path) writes in place.
        string path = SaveModel();
        var failing = new TransformerChain<ITransformer>(fixture.Model.Append<ITransformer>(new ThrowingTransformer()).ToArray());
        Assert.ThrowsAny<Exception>(() => fixture.Ml.Model.Save(failing, fixture.TrainData.Schema, path));
        Assert.ThrowsAny<Exception>(() => new MLContext().Model.Load(path, out _));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_truncated_zip_gets_an_error_naming_the_file_and_the_problem(bool onnxRuntime)
    {
        string path = SaveModel();
        byte[] bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes.AsSpan(0, bytes.Length / 2).ToArray());
        var ex = Assert.Throws<InvalidDataException>(() => LoadChecked(path, onnxRuntime));
        Assert.Contains(path, ex.Message);
        Assert.Contains("not a complete .zip archive", ex.Message);
    }

    [Fact]
    public void A_zip_whose_weights_were_altered_fails_the_checksum_with_a_clear_error()
    {
        string path = SaveModel();
        RewriteEntry(path, e => e.FullName.EndsWith("SDfpWeights", StringComparison.Ordinal), data => data[data.Length / 2] ^= 0x5A);
        var ex = Assert.Throws<InvalidDataException>(() => new MLContext().Model.LoadChecked(path, out _));
        Assert.Contains(path, ex.Message);
        Assert.Contains("SHA-256", ex.Message);
    }

    [Fact]
    public void A_zip_with_damaged_compressed_bytes_gets_a_clear_error()
    {
        string path = SaveModel();
        byte[] bytes = File.ReadAllBytes(path);
        long offset = EntryDataOffset(path, "SDfpWeights");
        for (int i = 0; i < 64; i++)
        {
            bytes[offset + 200 + i] ^= 0xFF;
        }

        File.WriteAllBytes(path, bytes);
        var ex = Assert.Throws<InvalidDataException>(() => new MLContext().Model.LoadChecked(path, out _));
        Assert.Contains(path, ex.Message);
        Assert.Matches("damaged|corrupt|SHA-256", ex.Message);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_zip_written_by_an_incompatible_version_says_so(bool onnxRuntime)
    {
        string path = SaveModel();
        byte[] signature = System.Text.Encoding.ASCII.GetBytes(SDfpImageClassificationTransformer.ModelSignature);
        RewriteEntry(path, e => e.FullName.EndsWith("Model.key", StringComparison.Ordinal) && e.Length > 0, data =>
        {
            int at = data.AsSpan().IndexOf(signature);
            if (at >= 0)
            {
                // ModelHeader: signature (8 bytes), then VerWritten and VerReadable (uint each).
                BitConverter.TryWriteBytes(data.AsSpan(at + 8, 4), 0x00020001u);
                BitConverter.TryWriteBytes(data.AsSpan(at + 12, 4), 0x00020001u);
            }
        });
        var ex = Assert.Throws<InvalidDataException>(() => LoadChecked(path, onnxRuntime));
        Assert.Contains(path, ex.Message);
        Assert.Contains("incompatible version", ex.Message);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_foreign_zip_is_reported_as_not_an_MLNET_model_and_a_missing_one_as_missing(bool onnxRuntime)
    {
        string path = Path.Combine(_dir, "foreign.zip");
        using (ZipArchive zip = ZipFile.Open(path, ZipArchiveMode.Create))
        {
            using var writer = new StreamWriter(zip.CreateEntry("readme.txt").Open());
            writer.Write("not a model");
        }

        var ex = Assert.Throws<InvalidDataException>(() => LoadChecked(path, onnxRuntime));
        Assert.Contains(path, ex.Message);
        Assert.Contains("not an ML.NET model", ex.Message);
        Assert.Throws<FileNotFoundException>(() => LoadChecked(Path.Combine(_dir, "missing.zip"), onnxRuntime));
    }

    // The two checked loads, which must report alike.
    private static ITransformer LoadChecked(string path, bool onnxRuntime) =>
        onnxRuntime ? new MLContext().Model.LoadWithOnnxRuntime(path, out _) : new MLContext().Model.LoadChecked(path, out _);

    private static void RewriteEntry(string path, Func<ZipArchiveEntry, bool> match, Action<byte[]> edit)
    {
        bool found = false;
        using ZipArchive zip = ZipFile.Open(path, ZipArchiveMode.Update);
        foreach (ZipArchiveEntry entry in zip.Entries.ToList())
        {
            if (!match(entry))
            {
                continue;
            }

            byte[] data;
            using (var stream = entry.Open())
            using (var buffer = new MemoryStream())
            {
                stream.CopyTo(buffer);
                data = buffer.ToArray();
            }

            byte[] original = (byte[])data.Clone();
            edit(data);
            if (data.AsSpan().SequenceEqual(original))
            {
                continue;
            }

            string name = entry.FullName;
            entry.Delete();
            using var output = zip.CreateEntry(name).Open();
            output.Write(data);
            found = true;
        }

        Assert.True(found, "no matching entry was changed");
    }

    private static long EntryDataOffset(string path, string suffix)
    {
        // Local file header: 30 bytes + name + extra, found by scanning for the entry name.
        byte[] bytes = File.ReadAllBytes(path);
        byte[] name = System.Text.Encoding.ASCII.GetBytes(suffix);
        int at = bytes.AsSpan().IndexOf(name);
        Assert.True(at > 0);
        int nameStart = at;
        while (nameStart > 0 && !(bytes[nameStart - 30] == 0x50 && bytes[nameStart - 29] == 0x4B && bytes[nameStart - 28] == 3 && bytes[nameStart - 27] == 4))
        {
            nameStart--;
        }

        int header = nameStart - 30;
        int nameLength = BitConverter.ToUInt16(bytes, header + 26);
        int extraLength = BitConverter.ToUInt16(bytes, header + 28);
        return header + 30 + nameLength + extraLength;
    }

    /// <summary>Fails in the middle of being saved (after the earlier transformers have been written).</summary>
    private sealed class ThrowingTransformer : ITransformer, ICanSaveModel
    {
        public bool IsRowToRowMapper => true;

        public DataViewSchema GetOutputSchema(DataViewSchema inputSchema) => inputSchema;

        public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) => throw new NotSupportedException();

        public IDataView Transform(IDataView input) => input;

        public void Save(ModelSaveContext ctx) => throw new IOException("simulated crash while saving");
    }
}
