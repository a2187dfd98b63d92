# Build medview's Windows installer: the PyInstaller bundle (packaging\medview.spec), its
# self-test, then the Inno Setup installer (packaging\windows\medview.iss).
#
#   powershell -ExecutionPolicy Bypass -File packaging\windows\build.ps1
#
# Needs: Python 3.11+ (python.org installer, "py" launcher) and Inno Setup 6 (ISCC.exe on PATH
# or in its default folder). Output: dist\medview\ (the bundle) and
# dist\medview-VERSION-windows-x64-setup.exe.
$ErrorActionPreference = "Stop"
Set-Location (Join-Path $PSScriptRoot "..\..")
$repo = Get-Location
$version = (Select-String -Path medview\__init__.py -Pattern '__version__ = "(.*)"').Matches[0].Groups[1].Value
$venv = Join-Path $repo "build\packaging\venv-windows"

# a build environment with only the runtime dependencies, the gui extra and PyInstaller
if (-not (Test-Path "$venv\Scripts\python.exe")) {
    py -3.11 -m venv $venv
    & "$venv\Scripts\python.exe" -m pip install --upgrade pip
    & "$venv\Scripts\python.exe" -m pip install ".[gui]" -r packaging\build-requirements.txt
    if ($LASTEXITCODE -ne 0) { throw "pip install failed" }
}

& "$venv\Scripts\python.exe" -m PyInstaller --noconfirm --distpath dist --workpath build\packaging\work-windows packaging\medview.spec
if ($LASTEXITCODE -ne 0) { throw "PyInstaller failed" }

# the bundle must pass its own self-test before it is packed
& dist\medview\medview.exe selftest
if ($LASTEXITCODE -ne 0) { throw "medview selftest failed on the bundle" }

$iscc = (Get-Command ISCC.exe -ErrorAction SilentlyContinue).Source
if (-not $iscc) { $iscc = "${env:ProgramFiles(x86)}\Inno Setup 6\ISCC.exe" }
& $iscc "/DAppVersion=$version" "/DBundleDir=$repo\dist\medview" packaging\windows\medview.iss
if ($LASTEXITCODE -ne 0) { throw "Inno Setup failed" }
Write-Host "dist\medview-$version-windows-x64-setup.exe"
