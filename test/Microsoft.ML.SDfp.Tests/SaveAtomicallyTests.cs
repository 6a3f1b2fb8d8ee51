using System.Runtime.InteropServices;

namespace Microsoft.ML.SDfp.Tests;

/// <summary>
/// <c>SaveAtomically</c> replaces a file the way a plain write would: refused where <c>Model.Save</c> is refused,
/// keeping mode and owner, following links, and cleaning only its own stale temporary files. Run as root (as CI
/// does), the refusals are checked on a thread whose file-system uid is "nobody" (<c>setfsuid</c>); run as another
/// user, they are checked as that user, and the other-owner cases need root to set up and are not run.
/// </summary>
[Collection(TrainedModelCollection.Name)]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class SaveAtomicallyTests(TrainedModelFixture fixture) : IDisposable
{
    private const uint Nobody = 65534;
    private readonly string _dir = Directory.CreateTempSubdirectory("sdfp-save-").FullName;

    private static bool IsRoot => geteuid() == 0;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void A_read_only_file_is_refused_as_Model_Save_refuses_it_and_nothing_changes()
    {
        string path = Path.Combine(_dir, "model.zip");
        File.WriteAllText(path, "earlier");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        File.SetUnixFileMode(_dir, (UnixFileMode)0x1FF);

        AsUnprivilegedUser(() =>
        {
            Assert.Throws<UnauthorizedAccessException>(() => fixture.Ml.Model.Save(fixture.Model, fixture.TrainData.Schema, path));
            var ex = Assert.Throws<UnauthorizedAccessException>(() => fixture.Ml.Model.SaveAtomically(fixture.Model, fixture.TrainData.Schema, path));
            Assert.Contains(path, ex.Message);
        });

        Assert.Equal("earlier", File.ReadAllText(path));
        Assert.Single(Directory.GetFiles(_dir));
    }

    [Fact]
    public void Another_users_file_that_this_user_may_not_write_is_refused()
    {
        if (!IsRoot)
        {
            return; // Creating another user's file needs root; CI runs as root.
        }

        string path = Path.Combine(_dir, "model.zip");
        File.WriteAllText(path, "root's");
        File.SetUnixFileMode(path, (UnixFileMode)0x1A4); // 0644, owned by root
        File.SetUnixFileMode(_dir, (UnixFileMode)0x1FF); // the folder lets anyone create files: only the file's mode protects it

        AsUnprivilegedUser(() => Assert.Throws<UnauthorizedAccessException>(() => fixture.Ml.Model.SaveAtomically(fixture.Model, fixture.TrainData.Schema, path)));
        Assert.Equal("root's", File.ReadAllText(path));
    }

    [Fact]
    public void The_replaced_file_keeps_its_mode_and_owner()
    {
        string path = Path.Combine(_dir, "model.zip");
        File.WriteAllText(path, "earlier");
        var mode = (UnixFileMode)0x1A0; // 0640
        File.SetUnixFileMode(path, mode);
        uint owner = IsRoot ? Nobody : geteuid();
        if (IsRoot)
        {
            Assert.Equal(0, chown(path, Nobody, Nobody));
        }

        fixture.Ml.Model.SaveAtomically(fixture.Model, fixture.TrainData.Schema, path);

        Assert.Equal(mode, File.GetUnixFileMode(path));
        Assert.Equal(owner, OwnerOf(path));
        Assert.NotNull(new MLContext().Model.LoadChecked(path, out _));
    }

    [Fact]
    public void A_symbolic_link_is_followed_and_stays_a_link()
    {
        string target = Path.Combine(_dir, "model-v1.zip");
        string link = Path.Combine(_dir, "model.zip");
        File.WriteAllText(target, "earlier");
        File.CreateSymbolicLink(link, target);

        fixture.Ml.Model.SaveAtomically(fixture.Model, fixture.TrainData.Schema, link);

        Assert.NotNull(new FileInfo(link).LinkTarget);
        Assert.NotNull(new MLContext().Model.LoadChecked(target, out _));
    }

    [Fact]
    public void Only_its_own_temporary_files_of_writers_that_died_are_removed()
    {
        string path = Path.Combine(_dir, "model.zip");
        string hex = new('a', 32);
        // pid_max is at most 2^22, so this writer cannot be alive.
        string dead = Touch($".model.999999999.{hex}.tmp.zip");
        string alive = Touch($".model.{Environment.ProcessId}.{hex}.tmp.zip");
        string otherFile = Touch($".other.999999999.{hex}.tmp.zip");
        string userFile = Touch(".model.backup.tmp.zip");
        string alsoUser = Touch($".model.999999999.{hex[..31]}.tmp.zip");

        fixture.Ml.Model.SaveAtomically(fixture.Model, fixture.TrainData.Schema, path);

        Assert.False(File.Exists(dead));
        Assert.All(new[] { alive, otherFile, userFile, alsoUser, path }, f => Assert.True(File.Exists(f), f));
    }

    private string Touch(string name)
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllText(path, "leftover");
        return path;
    }

    /// <summary>Runs <paramref name="action"/> as "nobody" (file-system ids of one thread) when root, else as is.</summary>
    private static void AsUnprivilegedUser(Action action)
    {
        if (!IsRoot)
        {
            action();
            return;
        }

        Exception? failure = null;
        var thread = new Thread(() =>
        {
            // setfsuid/setfsgid change only the calling thread's file-system ids and drop its file capabilities.
            setfsgid(Nobody);
            setfsuid(Nobody);
            try
            {
                action();
            }
            catch (Exception ex)
            {
                failure = ex;
            }
            finally
            {
                setfsuid(0);
                setfsgid(0);
            }
        });
        thread.Start();
        thread.Join();
        if (failure is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
        }
    }

    private static uint OwnerOf(string path)
    {
        // `stat -c %u` rather than a struct layout in the test.
        var start = new System.Diagnostics.ProcessStartInfo("stat", ["-c", "%u", path]) { RedirectStandardOutput = true };
        using var process = System.Diagnostics.Process.Start(start)!;
        string text = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return uint.Parse(text.Trim(), System.Globalization.CultureInfo.InvariantCulture);
    }

    [DllImport("libc")]
    private static extern uint geteuid();

    [DllImport("libc")]
    private static extern int setfsuid(uint uid);

    [DllImport("libc")]
    private static extern int setfsgid(uint gid);

    [DllImport("libc")]
    private static extern int chown([MarshalAs(UnmanagedType.LPUTF8Str)] string path, uint owner, uint group);
}
