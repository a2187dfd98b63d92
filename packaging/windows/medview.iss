; Inno Setup 6 script: a Windows installer over the PyInstaller one-folder bundle that
; packaging/medview.spec makes on Windows (dist\medview\medview.exe, medview-gui.exe,
; _internal\). packaging\windows\build.ps1 builds the bundle and then runs
;   ISCC.exe /DAppVersion=X.Y.Z /DBundleDir=..\..\dist\medview packaging\windows\medview.iss
; Output: dist\medview-X.Y.Z-windows-x64-setup.exe
;
; Per-user or per-machine (the user chooses; no admin rights needed for per-user), a Start
; menu entry on the windowed executable, optional: desktop icon, `medview` on PATH (for
; `medview selftest` in a terminal), "Open with medview" for .dcm files and for folders.

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#ifndef BundleDir
  #define BundleDir "..\..\dist\medview"
#endif

[Setup]
; a fixed AppId: upgrades replace the installed version instead of installing beside it
AppId={{6F1B7C2E-3D8A-4B5E-9C41-8E2D7A6F0B13}
AppName=medview
AppVersion={#AppVersion}
AppVerName=medview {#AppVersion}
AppPublisher=medview developers
DefaultDirName={autopf}\medview
DefaultGroupName=medview
DisableProgramGroupPage=yes
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
MinVersion=10.0
OutputDir=..\..\dist
OutputBaseFilename=medview-{#AppVersion}-windows-x64-setup
SetupIconFile=..\icons\medview.ico
UninstallDisplayIcon={app}\medview-gui.exe
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
ChangesEnvironment=yes
ChangesAssociations=yes

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked
Name: "addtopath"; Description: "Add medview to PATH (command line: medview selftest, medview convert, ...)"; GroupDescription: "Command line:"
Name: "assocdcm"; Description: "Open .dcm files with medview"; GroupDescription: "File associations:"
Name: "assocfolder"; Description: """Open in medview"" on folders (DICOM CDs, study exports)"; GroupDescription: "File associations:"

[Files]
Source: "{#BundleDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{autoprograms}\medview"; Filename: "{app}\medview-gui.exe"; Comment: "DICOM viewer and analysis workstation"
Name: "{autoprograms}\medview self-test"; Filename: "{cmd}"; Parameters: "/k ""{app}\medview.exe"" selftest"; Comment: "Check this installation"
Name: "{autodesktop}\medview"; Filename: "{app}\medview-gui.exe"; Tasks: desktopicon

[Registry]
; App Paths: "medview" in the Run dialog and ShellExecute find the console executable
Root: HKA; Subkey: "Software\Microsoft\Windows\CurrentVersion\App Paths\medview.exe"; ValueType: string; ValueData: "{app}\medview.exe"; Flags: uninsdeletekey
; .dcm: a ProgID of ours, listed under OpenWithProgids (offered, not forced as the default)
Root: HKA; Subkey: "Software\Classes\medview.dicom"; ValueType: string; ValueData: "DICOM image"; Flags: uninsdeletekey; Tasks: assocdcm
Root: HKA; Subkey: "Software\Classes\medview.dicom\DefaultIcon"; ValueType: string; ValueData: "{app}\medview-gui.exe,0"; Tasks: assocdcm
Root: HKA; Subkey: "Software\Classes\medview.dicom\shell\open\command"; ValueType: string; ValueData: """{app}\medview-gui.exe"" ""%1"""; Tasks: assocdcm
Root: HKA; Subkey: "Software\Classes\.dcm\OpenWithProgids"; ValueType: string; ValueName: "medview.dicom"; ValueData: ""; Flags: uninsdeletevalue; Tasks: assocdcm
; folders: a verb of its own in the context menu; the default action stays Explorer's
Root: HKA; Subkey: "Software\Classes\Directory\shell\medview"; ValueType: string; ValueData: "Open in medview"; Flags: uninsdeletekey; Tasks: assocfolder
Root: HKA; Subkey: "Software\Classes\Directory\shell\medview"; ValueType: string; ValueName: "Icon"; ValueData: "{app}\medview-gui.exe,0"; Tasks: assocfolder
Root: HKA; Subkey: "Software\Classes\Directory\shell\medview\command"; ValueType: string; ValueData: """{app}\medview-gui.exe"" ""%1"""; Tasks: assocfolder

[Run]
Filename: "{app}\medview-gui.exe"; Parameters: "--demo"; Description: "Open medview on the demo study"; Flags: nowait postinstall skipifsilent unchecked

[Code]
// PATH: the user's (per-user install) or the system's (per-machine), added and removed
function PathKeyRoot: Integer;
begin
  if IsAdminInstallMode then Result := HKEY_LOCAL_MACHINE else Result := HKEY_CURRENT_USER;
end;

function PathKeyName: String;
begin
  if IsAdminInstallMode then
    Result := 'SYSTEM\CurrentControlSet\Control\Session Manager\Environment'
  else
    Result := 'Environment';
end;

procedure AddToPath(Dir: String);
var Paths: String;
begin
  if not RegQueryStringValue(PathKeyRoot, PathKeyName, 'Path', Paths) then Paths := '';
  if Pos(';' + Uppercase(Dir) + ';', ';' + Uppercase(Paths) + ';') > 0 then exit;
  if (Paths <> '') and (Copy(Paths, Length(Paths), 1) <> ';') then Paths := Paths + ';';
  RegWriteExpandStringValue(PathKeyRoot, PathKeyName, 'Path', Paths + Dir);
end;

procedure RemoveFromPath(Dir: String);
var Paths: String; P: Integer;
begin
  if not RegQueryStringValue(PathKeyRoot, PathKeyName, 'Path', Paths) then exit;
  P := Pos(';' + Uppercase(Dir) + ';', ';' + Uppercase(Paths) + ';');
  if P = 0 then exit;
  // P is where ";DIR;" starts in ";" + Paths + ";", so DIR starts at P in Paths
  if P = 1 then
    Delete(Paths, 1, Length(Dir) + 1)       // "DIR;rest" or "DIR"
  else
    Delete(Paths, P - 1, Length(Dir) + 1);  // "rest;DIR..."
  RegWriteExpandStringValue(PathKeyRoot, PathKeyName, 'Path', Paths);
end;

procedure CurStepChanged(CurStep: TSetupStep);
begin
  if (CurStep = ssPostInstall) and WizardIsTaskSelected('addtopath') then
    AddToPath(ExpandConstant('{app}'));
end;

procedure CurUninstallStepChanged(CurUninstallStep: TUninstallStep);
begin
  if CurUninstallStep = usPostUninstall then RemoveFromPath(ExpandConstant('{app}'));
end;
