using System.IO.Compression;
using System.Text.Json;
using Microsoft.ML.SDfp.Numerics.Formats;
using Microsoft.ML.SDfp.Numerics.Quantization;
using Microsoft.ML.SDfp.Numerics.Telemetry;
using static TorchSharp.torch;

namespace Microsoft.ML.SDfp.Numerics.Tests;

public class TelemetryTests : TorchTests
{
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Statistics_of_a_hand_made_tensor_are_exact(bool fused)
    {
        // DFP4 (qmax 7) with shift 1: amax 7 gives e = 0, then e − s = −1, so the grid step is 0.5 and the range ±3.5 (−4).
        //   10 zeros            → exact, not flushed (they were zero)
        //   0.2 ×4, -0.25 ×1    → 0.2/0.5 = 0.4 → 0 and -0.5 → -0 (half to even): 5 flushed
        //   1.0 ×8              → exact
        //   7.0, -5.0           → saturate to 3.5 and -4.0
        float[] values = [.. Enumerable.Repeat(0f, 10), 0.2f, 0.2f, 0.2f, 0.2f, -0.25f, .. Enumerable.Repeat(1f, 8), 7f, -5f];
        using var x = tensor(values);
        var telemetry = new QuantizationTelemetry { Step = 12 };
        using var quantizer = new TensorQuantizer("probe", TensorRole.Activation, DfpFormat.SDfp(4, 1), telemetry);
        var saved = QuantizationKernel.UseFused;
        try
        {
            QuantizationKernel.UseFused = fused;
            using var y = quantizer.FakeQuantize(x);
        }
        finally
        {
            QuantizationKernel.UseFused = saved;
        }

        var r = Assert.Single(telemetry.Records);
        Assert.Equal(("probe", TensorRole.Activation, 12L), (r.Layer, r.Role, r.Step));
        Assert.Equal(-1, r.Exponent);
        Assert.Equal(1, r.Shift);
        Assert.Equal(7.0, r.Amax);
        Assert.Equal(2.0 / 25, r.SaturatedFraction, 12);
        Assert.Equal(5.0 / 15, r.FlushedToZeroFraction, 12); // of the 15 non-zero inputs
        double small = 0.2f; // the FP32 value nearest 0.2, as the tensor holds it
        var signal = 4 * small * small + 0.0625 + 8 + 49 + 25;
        var noise = 4 * small * small + 0.0625 + 3.5 * 3.5 + 1;
        Assert.Equal(10 * Math.Log10(signal / noise), r.SqnrDb, 6); // squares summed in FP32 blocks: 1e-6 dB
        Assert.Equal(0, r.NonFiniteCount);
    }

    [Fact]
    public void Exact_quantisation_has_infinite_sqnr()
    {
        var telemetry = new QuantizationTelemetry();
        using var quantizer = new TensorQuantizer("l", TensorRole.Weight, DfpFormat.Dfp(8), telemetry);
        using var x = tensor(new[] { 1f, -2f, 3f, 127f });
        using var _ = quantizer.FakeQuantize(x);
        Assert.Equal(double.PositiveInfinity, telemetry.Records[0].SqnrDb);
    }

    [Fact]
    public void Sample_every_n_steps_measures_full_statistics_only_on_those_steps()
    {
        var telemetry = new QuantizationTelemetry { SampleEvery = 3 };
        using var quantizer = new TensorQuantizer("l", TensorRole.Error, DfpFormat.Dfp(8), telemetry);
        using var x = Random(1, 100);
        for (var step = 0; step < 7; step++)
        {
            telemetry.Step = step;
            using var _ = quantizer.FakeQuantize(x);
        }
        var records = telemetry.Records;
        Assert.Equal(7, records.Count);
        Assert.Equal(new long[] { 0, 3, 6 }, records.Where(r => r.HasFullStatistics).Select(r => r.Step));
        Assert.All(records, r => Assert.Equal(quantizer.LastExponent, r.Exponent)); // exponent on every step
        Assert.All(records.Where(r => !r.HasFullStatistics), r => Assert.True(double.IsNaN(r.SqnrDb)));
    }

    [Fact]
    public void Disabled_telemetry_records_nothing()
    {
        var telemetry = new QuantizationTelemetry { Enabled = false };
        using var quantizer = new TensorQuantizer("l", TensorRole.Error, DfpFormat.Dfp(8), telemetry);
        using var x = Random(1, 100);
        using var _ = quantizer.FakeQuantize(x);
        Assert.Empty(telemetry.Records);
        Assert.Throws<ArgumentOutOfRangeException>(() => telemetry.SampleEvery = 0);
    }

    [Fact]
    public void Csv_and_json_exports_hold_every_record_and_are_written_atomically()
    {
        var telemetry = new QuantizationTelemetry();
        telemetry.Record(new TensorStatistics("layer1.0.conv1", TensorRole.Error, 5, -9, 2, 0.25, 0.01, 0.5, double.PositiveInfinity, 0));
        telemetry.Record(new TensorStatistics("fc,odd\"name", TensorRole.Weight, 6, -3, 0, 1.5, double.NaN, double.NaN, double.NaN, 0));
        var folder = Path.Combine(Path.GetTempPath(), "sdfp-numerics-tests", Guid.NewGuid().ToString("N"));
        try
        {
            var csv = Path.Combine(folder, "sub", "t.csv");
            var json = Path.Combine(folder, "t.json");
            telemetry.WriteCsv(csv);
            telemetry.WriteJson(json);
            var lines = File.ReadAllLines(csv);
            Assert.Equal("layer,role,step,exponent,shift,amax,saturated_fraction,flushed_to_zero_fraction,sqnr_db,non_finite_count", lines[0]);
            Assert.Equal("layer1.0.conv1,Error,5,-9,2,0.25,0.01,0.5,∞,0".Replace("∞", double.PositiveInfinity.ToString(System.Globalization.CultureInfo.InvariantCulture)), lines[1]);
            Assert.StartsWith("\"fc,odd\"\"name\",Weight,6,-3,0,1.5,NaN", lines[2]);

            using var doc = JsonDocument.Parse(File.ReadAllText(json));
            var items = doc.RootElement.EnumerateArray().ToArray();
            Assert.Equal(2, items.Length);
            Assert.Equal("layer1.0.conv1", items[0].GetProperty("layer").GetString());
            Assert.Equal(-9, items[0].GetProperty("exponent").GetInt32());
            Assert.Equal("Infinity", items[0].GetProperty("sqnrDb").GetString());
            Assert.Equal("NaN", items[1].GetProperty("saturatedFraction").GetString());
            // Only the two targets remain: the temporary files were renamed over them.
            Assert.Equal(new[] { "t.json" }, Directory.GetFiles(folder).Select(Path.GetFileName));
            Assert.Equal(new[] { "t.csv" }, Directory.GetFiles(Path.Combine(folder, "sub")).Select(Path.GetFileName));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void A_written_csv_reads_back_as_the_same_records_including_quoted_names_and_non_finite_numbers()
    {
        var telemetry = new QuantizationTelemetry();
        telemetry.Record(new TensorStatistics("layer1.0.conv1", TensorRole.Error, 5, -9, 2, 0.25, 0.01, 0.5, double.PositiveInfinity, 0));
        telemetry.Record(new TensorStatistics("fc,odd\"name", TensorRole.Weight, 6, -3, 0, 1.5, double.NaN, double.NaN, double.NaN, 3));
        telemetry.Record(new TensorStatistics("conv1", TensorRole.Activation, 7, 4, 1, 0.1 + 0.2, 1e-300, 0, -12.5, 0));
        var path = Path.Combine(Path.GetTempPath(), "sdfp-numerics-tests", Guid.NewGuid().ToString("N") + ".csv");
        try
        {
            telemetry.WriteCsv(path);
            Assert.Equal(telemetry.Records, QuantizationTelemetry.ReadCsv(path));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Reading_a_file_that_is_not_telemetry_names_the_file_and_line()
    {
        var path = Path.Combine(Path.GetTempPath(), "sdfp-numerics-tests", Guid.NewGuid().ToString("N") + ".csv");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        try
        {
            File.WriteAllText(path, "a,b\n1,2\n");
            var header = Assert.Throws<InvalidDataException>(() => QuantizationTelemetry.ReadCsv(path));
            Assert.Contains(path, header.Message);
            Assert.Contains("line 1", header.Message);

            File.WriteAllText(path, "layer,role,step,exponent,shift,amax,saturated_fraction,flushed_to_zero_fraction,sqnr_db,non_finite_count\n" +
                                    "conv1,Weight,1,2,0,1,0,0,30,0\nconv1,Bias?,1,2,0,1,0,0,30,0\n");
            var row = Assert.Throws<InvalidDataException>(() => QuantizationTelemetry.ReadCsv(path));
            Assert.Contains("line 3", row.Message);
            Assert.Throws<FileNotFoundException>(() => QuantizationTelemetry.ReadCsv(path + ".missing"));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void A_gz_path_is_written_gzip_compressed_and_reads_back_as_the_same_records()
    {
        var telemetry = new QuantizationTelemetry();
        for (var step = 0; step < 200; step++)
            telemetry.Record(new TensorStatistics("layer1.0.conv1", TensorRole.Error, step, -9 - step % 3, 2, 0.25, step % 10 == 0 ? 0.01 : double.NaN, double.NaN, double.NaN, 0));
        telemetry.Record(new TensorStatistics("fc,odd\"name", TensorRole.Weight, 200, -3, 0, 1.5, 1e-300, 0, double.PositiveInfinity, 3));
        var folder = Path.Combine(Path.GetTempPath(), "sdfp-numerics-tests", Guid.NewGuid().ToString("N"));
        try
        {
            var gz = Path.Combine(folder, "t.csv.gz");
            var csv = Path.Combine(folder, "t.csv");
            telemetry.WriteCsv(gz);
            telemetry.WriteCsv(csv);
            var bytes = File.ReadAllBytes(gz);
            Assert.Equal(new byte[] { 0x1f, 0x8b }, bytes[..2]);
            Assert.True(bytes.Length < new FileInfo(csv).Length / 2, $"{bytes.Length} gzip bytes for {new FileInfo(csv).Length} CSV bytes");
            using (var text = new StreamReader(new GZipStream(new MemoryStream(bytes), CompressionMode.Decompress)))
                Assert.Equal(File.ReadAllText(csv), text.ReadToEnd());
            Assert.Equal(telemetry.Records, QuantizationTelemetry.ReadCsv(gz));

            var subset = telemetry.Records.Where(r => r.HasFullStatistics).ToList();
            QuantizationTelemetry.WriteCsv(gz, subset);
            Assert.Equal(subset, QuantizationTelemetry.ReadCsv(gz));
            // Only the two targets remain: the temporary files were renamed over them.
            Assert.Equal(new[] { "t.csv", "t.csv.gz" }, Directory.GetFiles(folder).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Theory]
    [InlineData("truncated")]
    [InlineData("corrupted")]
    [InlineData("not gzip")]
    public void A_damaged_gz_file_gives_an_error_naming_the_file(string damage)
    {
        var telemetry = new QuantizationTelemetry();
        for (var step = 0; step < 2000; step++)
            telemetry.Record(new TensorStatistics($"layer{step % 7}.conv1", TensorRole.Activation, step, step % 5, 1, step * 0.37, step * 1e-4, 0.5, 30 + step, 0));
        var path = Path.Combine(Path.GetTempPath(), "sdfp-numerics-tests", Guid.NewGuid().ToString("N") + ".csv.gz");
        try
        {
            telemetry.WriteCsv(path);
            var bytes = File.ReadAllBytes(path);
            bytes = damage switch
            {
                "truncated" => bytes[..(bytes.Length / 2)],
                "corrupted" => bytes.Select((b, i) => i >= 20 && i < bytes.Length - 8 ? (byte)(b ^ 0x5a) : b).ToArray(),
                _ => System.Text.Encoding.UTF8.GetBytes("layer,role,step,exponent\nconv1,Weight,1,2\n"),
            };
            File.WriteAllBytes(path, bytes);
            var e = Assert.Throws<InvalidDataException>(() => QuantizationTelemetry.ReadCsv(path));
            Assert.Contains(path, e.Message);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Concurrent_recording_loses_nothing()
    {
        var telemetry = new QuantizationTelemetry();
        Parallel.For(0, 8, t =>
        {
            for (var i = 0; i < 1000; i++)
                telemetry.Record(new TensorStatistics($"l{t}", TensorRole.Weight, i, 0, 0, 1, 0, 0, 1, 0));
        });
        Assert.Equal(8000, telemetry.Records.Count);
        Assert.Equal(8, telemetry.Latest().Count);
        Assert.All(telemetry.Latest(), r => Assert.Equal(999, r.Step));
    }
}
